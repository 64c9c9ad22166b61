import numpy as np
import pytest

from engine.camera import Camera
from engine.errors import SceneError
from engine.open_path import load_scene
from engine.scene.colmap import ColmapCamera, image_from_camera, read_model, write_model
from engine.scene.ply import save_ply_cloud


@pytest.mark.parametrize("binary", [True, False])
@pytest.mark.parametrize("with_colors", [True, False])
@pytest.mark.parametrize("with_normals", [True, False])
def test_ply_round_trip(tmp_path, rng, binary, with_colors, with_normals):
    n = 1000
    pts = rng.normal(size=(n, 3)).astype(np.float32)
    cols = rng.random((n, 3)).astype(np.float32) if with_colors else None
    nrm = rng.normal(size=(n, 3)).astype(np.float32) if with_normals else None
    if nrm is not None:
        nrm /= np.linalg.norm(nrm, axis=1, keepdims=True)
    path = tmp_path / "cloud.ply"
    save_ply_cloud(path, pts, cols, nrm, binary=binary)
    scene = load_scene(path)
    assert scene.num_points == n
    assert np.allclose(scene.points, pts, atol=1e-6)
    if with_colors:
        assert np.abs(scene.colors - cols).max() <= 0.5 / 255 + 1e-6
    else:
        assert scene.colors is None
    if with_normals:
        assert np.allclose(scene.normals, nrm, atol=1e-6)
    else:
        assert scene.normals is None


def test_ply_mesh_loads_its_vertices(tmp_path):
    import trimesh

    mesh = trimesh.creation.icosphere(subdivisions=2)
    path = tmp_path / "sphere.ply"
    mesh.export(path)
    assert load_scene(path).num_points == len(mesh.vertices)


def test_truncated_ply_gives_clear_error(tmp_path, rng):
    path = tmp_path / "cut.ply"
    save_ply_cloud(path, rng.normal(size=(500, 3)), rng.random((500, 3)))
    data = path.read_bytes()
    path.write_bytes(data[: len(data) - 700])
    with pytest.raises(SceneError, match="truncated") as e:
        load_scene(path)
    assert str(path) in str(e.value) and "\n" not in str(e.value)


def test_malformed_ply_gives_clear_error(tmp_path):
    path = tmp_path / "bad.ply"
    path.write_bytes(b"ply\nformat binary_little_endian 1.0\nelement vertex banana\nend_header\n")
    with pytest.raises(SceneError, match="not a valid PLY"):
        load_scene(path)
    path.write_bytes(b"this is not a ply file at all")
    with pytest.raises(SceneError, match=r"bad\.ply"):
        load_scene(path)


def test_empty_cloud_is_an_error(tmp_path):
    path = tmp_path / "empty.ply"
    save_ply_cloud(path, np.zeros((0, 3)))
    with pytest.raises(SceneError, match="empty"):
        load_scene(path)


def test_nan_points_are_dropped_and_all_nan_is_an_error(tmp_path, rng):
    pts = rng.normal(size=(100, 3)).astype(np.float32)
    pts[::10] = np.nan
    path = tmp_path / "nan.ply"
    save_ply_cloud(path, pts, rng.random((100, 3)))
    scene = load_scene(path)
    assert scene.num_points == 90 and np.isfinite(scene.points).all()
    assert scene.colors.shape == (90, 3) and scene.dropped_points == 10
    save_ply_cloud(path, np.full((5, 3), np.nan))
    with pytest.raises(SceneError, match="NaN"):
        load_scene(path)


def test_missing_path_and_unknown_type(tmp_path):
    with pytest.raises(SceneError, match="no such file"):
        load_scene(tmp_path / "nope.ply")
    (tmp_path / "x.abc").write_text("1 2 3\n")  # (.xyz is a point format now)
    with pytest.raises(SceneError, match="unsupported"):
        load_scene(tmp_path / "x.abc")
    with pytest.raises(SceneError, match="not a COLMAP model"):
        load_scene(tmp_path)


def make_colmap(tmp_path, rng, binary: bool, n_images=5, n_points=300):
    cams = [
        ColmapCamera(1, "PINHOLE", 320, 240, np.array([300.0, 310.0, 160.0, 120.0])),
        ColmapCamera(2, "SIMPLE_RADIAL", 640, 480, np.array([500.0, 320.0, 240.0, 0.01])),
    ]
    truth = []
    images = []
    for i in range(n_images):
        a = 2 * np.pi * i / n_images
        cam = Camera.look_at([4 * np.cos(a), 1.0, 4 * np.sin(a)], [0, 0, 0], [0, 1, 0], 320, 240)
        images.append(image_from_camera(i + 1, 1 + i % 2, f"img_{i:03d}.png", cam))
        truth.append(cam)
    xyz = rng.normal(size=(n_points, 3))
    rgb = rng.integers(0, 256, (n_points, 3), dtype=np.uint8)
    d = tmp_path / ("bin" if binary else "txt") / "sparse" / "0"
    write_model(d, cams, images, xyz, rgb, binary=binary)
    return d.parent.parent, truth, xyz, rgb


@pytest.mark.parametrize("binary", [True, False])
def test_colmap_model_round_trip(tmp_path, rng, binary):
    root, truth, xyz, rgb = make_colmap(tmp_path, rng, binary)
    scene = load_scene(root)
    assert scene.num_points == len(xyz)
    assert np.allclose(scene.points, xyz, atol=1e-5)
    assert np.allclose(scene.colors * 255, rgb, atol=1e-3)
    assert [v.name for v in scene.views] == [f"img_{i:03d}.png" for i in range(5)]
    for v, cam in zip(scene.views, truth, strict=True):
        assert np.allclose(v.camera.world_to_camera, cam.world_to_camera, atol=1e-9)
    assert (scene.views[0].camera.fx, scene.views[0].camera.fy) == (300.0, 310.0)
    assert (scene.views[1].camera.fx, scene.views[1].camera.fy) == (500.0, 500.0)
    assert np.dot(scene.up, [0, 1, 0]) > 0.99  # cameras are upright: up is recovered


def test_colmap_missing_file_is_named(tmp_path, rng):
    root, *_ = make_colmap(tmp_path, rng, binary=True)
    (root / "sparse" / "0" / "points3D.bin").unlink()
    with pytest.raises(SceneError, match=r"points3D\.bin.*missing"):
        load_scene(root)


def test_colmap_truncated_binary(tmp_path, rng):
    root, *_ = make_colmap(tmp_path, rng, binary=True)
    f = root / "sparse" / "0" / "images.bin"
    f.write_bytes(f.read_bytes()[:-30])
    with pytest.raises(SceneError, match="truncated"):
        load_scene(root)


def test_statue_colmap_model(statue_dir):
    model = read_model(statue_dir)
    assert len(model.images) == 23 and len(model.xyz) == 1443 and len(model.cameras) == 23
    assert {c.model for c in model.cameras.values()} == {"PINHOLE"}
    scene = load_scene(statue_dir)
    assert scene.num_points == 1443 and len(scene.views) == 23
    assert all(v.has_image for v in scene.views)
    # Points reproject near the middle of the photos that see them: a sanity check of poses.
    cam = scene.views[0].camera
    uv, z = cam.project(scene.points)
    inside = (
        (z > 0) & (uv[:, 0] > 0) & (uv[:, 0] < cam.width) & (uv[:, 1] > 0) & (uv[:, 1] < cam.height)
    )
    assert inside.mean() > 0.8


def test_bundled_demo_ply():
    from tests.conftest import DEMO

    scene = load_scene(DEMO)
    assert scene.num_points == 240_000
    assert scene.colors is not None and scene.normals is not None
    assert np.allclose(np.linalg.norm(scene.normals, axis=1), 1, atol=1e-3)
    lo, hi = scene.points.min(0), scene.points.max(0)
    assert lo[1] > -0.05 and 1.5 < hi[1] < 1.7  # the 1.6-unit Armadillo stands on the floor
