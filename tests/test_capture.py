"""Importers: photos / video / NeRF captures / COLMAP folders -> scene folders, and 3DGS clouds.

The captures are rendered here (a textured scene from a ring of cameras with known poses), so
the tests check that structure from motion recovers the true cameras and that dense points lie
on the true surfaces.
"""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
import torch

from engine.capture.importer import ImportOptions, import_capture, source_kind
from engine.capture.progress import ImportCancelled, Progress
from engine.errors import NsvError, SceneError
from engine.open_path import load_scene
from engine.scene.nerf import read_transforms, write_transforms
from engine.scene.types import RegisteredView
from engine.synthetic.capture import read_truth, write_capture
from tests.helpers import assert_one_line_error, nsv

FAST = ImportOptions(densify="none")


@pytest.fixture(scope="module")
def capture(tmp_path_factory):
    root = tmp_path_factory.mktemp("capture")
    write_capture(root, views=20, width=320, height=240, video_frames=36)
    return root


def _pose_error(scene_dir, truth_file):
    from engine.capture.align import compare_to_reference

    return compare_to_reference(scene_dir, truth_file)


def test_photo_import_recovers_the_true_poses(capture, tmp_path):
    out = tmp_path / "scene"
    steps = []
    report = import_capture(capture / "photos", out, FAST, Progress(steps.append))
    registered = report["sfm"]["registered"]
    assert registered >= 19  # pycolmap's mapper is multi-threaded, hence not deterministic
    scene = load_scene(out)
    assert len(scene.views) == registered and all(v.has_image for v in scene.views)
    err = _pose_error(out, capture / "truth.json")
    assert err["rotation_deg_max"] < 1.0, err
    assert err["position_max_rel"] < 0.02, err
    # Every stage reported progress and a summary of what it found.
    stages = {s.stage for s in steps}
    assert {"extracting features", "mapping: registering photos", "found"} <= stages
    assert any(f"{registered}/20 photos registered" in s.info for s in steps)
    assert not (tmp_path / ".scene.partial").exists()


def test_video_import_keeps_sharp_spread_frames_and_recovers_poses(capture, tmp_path):
    out = tmp_path / "scene"
    opts = ImportOptions(densify="none", max_frames=24)
    report = import_capture(capture / "video.mp4", out, opts)
    assert report["kind"] == "video"
    kept = report["video_frames"]  # name -> frame index in the clip
    assert len(kept) == 24 and report["sfm"]["photos"] == 24
    idx = sorted(kept.values())
    assert idx[0] <= 1 and idx[-1] >= 34 and np.diff(idx).max() <= 3  # spread over the clip
    assert report["sfm"]["registered"] >= 22
    truth = read_truth(capture / "video_truth.json")
    ref = {name: truth[f"frame_{i:04d}.jpg"] for name, i in kept.items()}
    from engine.capture.align import compare_cameras

    ours = {v.name: v.camera for v in load_scene(out).views}
    err = compare_cameras(ours, ref)
    assert err["rotation_deg_max"] < 2.0 and err["position_max_rel"] < 0.03, err


def test_nerf_capture_opens_directly_and_imports_with_dense_points_on_the_surface(
    capture, tmp_path
):
    nerf = tmp_path / "nerf"
    shutil.copytree(capture / "nerf", nerf)
    assert source_kind(nerf) == "nerf"
    scene = load_scene(nerf)  # no point cloud in the capture: triangulated from the poses
    truth = read_truth(capture / "truth.json")
    assert len(scene.views) == 20 and scene.num_points > 100
    for v in scene.views:
        true_cam = truth[v.name.split("/")[-1]]
        np.testing.assert_allclose(v.camera.world_to_camera, true_cam.world_to_camera, atol=1e-9)
    assert (nerf / "nsv_points.ply").is_file()  # cached for the next open

    out = tmp_path / "scene"
    opts = ImportOptions(densify="planesweep", dense_side=200, num_depths=48)
    report = import_capture(nerf, out, opts)
    dense = load_scene(out)
    assert dense.num_points == report["dense"]["points"] > 20 * scene.num_points
    # Poses are exact here, so dense points must lie on the true surfaces.
    from scipy.spatial import cKDTree

    from engine.synthetic.capture import capture_objects
    from engine.synthetic.scenes import sample_cloud

    surface, _, _ = sample_cloud(capture_objects(0), 300_000, seed=1)
    dist, _ = cKDTree(surface).query(dense.points)
    assert np.median(dist) < 0.02, np.median(dist)  # scene is ~4 units across
    assert np.mean(dist < 0.05) > 0.8
    # `nsv import --max-points` caps the cloud.
    res = nsv("import", str(nerf), str(tmp_path / "capped"), "--dense-size", "200", "--depths",
              "48", "--max-points", str(dense.num_points // 3))  # fmt: skip
    assert res.returncode == 0, res.stderr
    assert load_scene(tmp_path / "capped").num_points == dense.num_points // 3


def test_known_poses_triangulate_from_neighbouring_photos_only(capture, tmp_path, monkeypatch):
    """Above POSE_PAIRS_ABOVE photos, a capture with known poses matches each photo only with
    its nearest in position and direction (a long video's 110 frames: 1,425 pairs, not 5,995)
    and still triangulates about as many points on the surfaces."""
    from scipy.spatial import cKDTree

    from engine.capture import sfm
    from engine.synthetic.capture import capture_objects
    from engine.synthetic.scenes import sample_cloud

    surface, _, _ = sample_cloud(capture_objects(0), 300_000, seed=1)
    found = {}
    for name, above in (("every pair", 10**6), ("neighbours", 8)):
        monkeypatch.setattr(sfm, "POSE_PAIRS_ABOVE", above)
        monkeypatch.setattr(sfm, "POSE_PAIRS_K", 6)
        nerf = tmp_path / name
        shutil.copytree(capture / "nerf", nerf)
        found[name] = load_scene(nerf)
    n_all, n_near = found["every pair"].num_points, found["neighbours"].num_points
    assert n_near > 0.5 * n_all, (n_near, n_all)
    dist, _ = cKDTree(surface).query(found["neighbours"].points)
    assert np.median(dist) < 0.02, np.median(dist)


def test_transforms_round_trip_is_exact(capture, tmp_path):
    scene = load_scene(capture / "nerf")
    views = [RegisteredView(v.name, v.camera, v.image_path) for v in scene.views]
    path = capture / "nerf" / "transforms_copy.json"
    try:
        write_transforms(path, views)
        back = read_transforms(path)
    finally:
        path.unlink(missing_ok=True)
    for a, b in zip(views, back.frames, strict=True):
        assert a.name == b.name
        np.testing.assert_allclose(a.camera.world_to_camera, b.camera.world_to_camera, atol=1e-12)
        assert (a.camera.fx, a.camera.fy, a.camera.cx, a.camera.cy) == (
            b.camera.fx, b.camera.fy, b.camera.cx, b.camera.cy,
        )  # fmt: skip


def _blender_capture(root, n=4, rgba=True):
    """A Blender-synthetic-style capture: split files, camera_angle_x, no extensions, RGBA."""
    import imageio.v3 as iio

    (root / "train").mkdir(parents=True)
    frames = []
    for i in range(n):
        img = np.zeros((40, 60, 4 if rgba else 3), np.uint8)
        img[..., 0] = 200
        if rgba:
            img[10:30, 20:40, 3] = 255
        iio.imwrite(root / "train" / f"r_{i}.png", img)
        a = 2 * np.pi * i / n
        c2w = np.eye(4)
        c2w[:3, 3] = [4 * np.sin(a), 0, 4 * np.cos(a)]
        c2w[:3, 0] = [np.cos(a), 0, -np.sin(a)]
        c2w[:3, 2] = [np.sin(a), 0, np.cos(a)]  # camera looks down -z, towards the origin
        frames.append({"file_path": f"./train/r_{i}", "transform_matrix": c2w.tolist()})
    meta = {"camera_angle_x": 0.69, "frames": frames}
    (root / "transforms_train.json").write_text(json.dumps(meta))
    return meta


def test_blender_and_ngp_variants(tmp_path):
    from engine.scene.nerf import read_transforms

    root = tmp_path / "lego"
    _blender_capture(root)
    cap = read_transforms(root)
    assert [f.name for f in cap.frames] == [f"train/r_{i}.png" for i in range(4)]
    c = cap.frames[0].camera
    assert (c.width, c.height) == (60, 40)
    assert c.fx == pytest.approx(30 / np.tan(0.345))
    # Camera 0 sits at +z looking at the origin: the origin projects to the image centre.
    uv, z = c.project(np.zeros((1, 3)))
    np.testing.assert_allclose(uv[0], [30, 20], atol=1e-9)
    assert z[0] == pytest.approx(4.0)

    # instant-ngp style: shared fl_x/fl_y/cx/cy/w/h, aabb_scale, distortion fields.
    meta = json.loads((root / "transforms_train.json").read_text())
    meta.update({"fl_x": 50.0, "fl_y": 52.0, "cx": 31.0, "cy": 19.0, "w": 60, "h": 40,
                 "k1": 0.01, "aabb_scale": 16})  # fmt: skip
    del meta["camera_angle_x"]
    (root / "transforms_train.json").write_text(json.dumps(meta))
    f0 = read_transforms(root).frames[0]
    assert (f0.camera.fx, f0.camera.fy, f0.camera.cx, f0.camera.cy) == (50.0, 52.0, 31.0, 19.0)
    assert f0.distortion == {"k1": 0.01}


def test_nerfstudio_capture_uses_its_ply(tmp_path):
    from engine.scene.ply import save_ply_cloud

    root = tmp_path / "ns"
    meta = _blender_capture(root, rgba=False)
    pts = np.random.default_rng(0).normal(size=(500, 3)).astype(np.float32)
    save_ply_cloud(root / "sparse_pc.ply", pts, np.full_like(pts, 0.5), None)
    meta["ply_file_path"] = "sparse_pc.ply"
    (root / "transforms.json").write_text(json.dumps(meta))
    (root / "transforms_train.json").unlink()
    scene = load_scene(root / "transforms.json")
    assert scene.num_points == 500 and len(scene.views) == 4
    np.testing.assert_allclose(scene.points, pts)


@pytest.mark.parametrize(
    "problem,needle",
    [
        ("missing", "images are missing"),  # with --strict; without, see the test below
        ("matrix", "transform_matrix"),
        ("json", "not valid JSON"),
    ],
)
def test_bad_transforms_are_clear_errors(tmp_path, problem, needle):
    root = tmp_path / "bad"
    meta = _blender_capture(root)
    if problem == "missing":
        (root / "train" / "r_2.png").unlink()
        (root / "transforms_train.json").write_text(json.dumps(meta))
    elif problem == "matrix":
        meta["frames"][1]["transform_matrix"] = [[1, 2], [3, 4]]
        (root / "transforms_train.json").write_text(json.dumps(meta))
    else:
        (root / "transforms_train.json").write_text("{frames: [")
    if problem == "missing":
        from engine.scene.nerf import read_transforms

        with pytest.raises(SceneError, match=needle):
            read_transforms(root, strict=True)
        strict = nsv("import", str(root), str(tmp_path / "out"), "--strict")
        assert_one_line_error(strict, needle)
    else:
        with pytest.raises(SceneError, match=needle):
            load_scene(root)
        assert_one_line_error(nsv("import", str(root), str(tmp_path / "out")), needle)
    assert not (tmp_path / "out").exists()


def test_partly_missing_images_are_skipped_and_counted(tmp_path):
    root = tmp_path / "pruned"
    meta = _blender_capture(root)
    (root / "train" / "r_2.png").unlink()
    (root / "transforms_train.json").write_text(json.dumps(meta))
    from engine.scene.nerf import read_transforms

    cap = read_transforms(root)
    assert len(cap.skipped) == 1 and "r_2" in cap.skipped[0]
    assert len(cap.frames) == len(meta["frames"]) - 1


def test_gaussian_splatting_ply_opens_with_dc_colors(tmp_path):
    from engine.gaussians.model import SH_C0

    n = 100
    rng = np.random.default_rng(0)
    names = ["x", "y", "z", "nx", "ny", "nz", "f_dc_0", "f_dc_1", "f_dc_2"]
    names += [f"f_rest_{i}" for i in range(9)] + ["opacity", "scale_0", "scale_1", "scale_2"]
    names += ["rot_0", "rot_1", "rot_2", "rot_3"]
    data = rng.normal(size=(n, len(names))).astype(np.float32)
    op = names.index("opacity")
    data[:10, op] = -10.0  # nearly transparent: kept (the Gaussians mode skips them per pixel)
    data[10:, op] = 2.0
    header = f"ply\nformat binary_little_endian 1.0\nelement vertex {n}\n"
    header += "".join(f"property float {nm}\n" for nm in names) + "end_header\n"
    path = tmp_path / "point_cloud.ply"
    path.write_bytes(header.encode() + data.tobytes())
    scene = load_scene(path)
    assert scene.num_points == 100 and scene.gaussians.count == 100
    dc = data[:, 6:9]
    np.testing.assert_allclose(scene.colors, np.clip(0.5 + SH_C0 * dc, 0, 1), atol=2e-3)
    np.testing.assert_allclose(scene.points, data[:, :3])


def test_too_few_and_non_overlapping_photos(tmp_path):
    import imageio.v3 as iio

    photos = tmp_path / "photos"
    photos.mkdir()
    rng = np.random.default_rng(0)
    for i in range(2):
        iio.imwrite(photos / f"p{i}.png", rng.integers(0, 255, (120, 160, 3), dtype=np.uint8))
    with pytest.raises(NsvError, match="at least 3"):
        import_capture(photos, tmp_path / "out", FAST)
    for i in range(2, 5):  # unrelated noise images: nothing matches
        iio.imwrite(photos / f"p{i}.png", rng.integers(0, 255, (120, 160, 3), dtype=np.uint8))
    assert_one_line_error(nsv("import", str(photos), str(tmp_path / "out")), "overlap")
    assert not (tmp_path / "out").exists() and not (tmp_path / ".out.partial").exists()


def test_undecodable_video_and_existing_output(tmp_path, capture):
    bad = tmp_path / "clip.mp4"
    bad.write_bytes(b"\x00\x00\x00\x18ftypmp42" + bytes(2000))
    assert_one_line_error(nsv("import", str(bad), str(tmp_path / "o")), "cannot decode")
    (tmp_path / "taken").mkdir()
    (tmp_path / "taken" / "keep.txt").write_text("user data")
    assert_one_line_error(
        nsv("import", str(capture / "photos"), str(tmp_path / "taken")), "--force"
    )
    assert (tmp_path / "taken" / "keep.txt").read_text() == "user data"


def test_cancel_leaves_nothing_behind(capture, tmp_path):
    progress = Progress()

    def on_step(step):
        if step.stage.startswith("mapping"):
            progress.cancel()

    progress.callback = on_step
    with pytest.raises(ImportCancelled):
        import_capture(capture / "photos", tmp_path / "out", FAST, progress)
    assert list(tmp_path.iterdir()) == []


def test_cli_import_then_fit(capture, tmp_path):
    out = tmp_path / "scene"
    res = nsv("import", str(capture / "nerf"), str(out), "--densify", "none",
              "--reference", str(capture / "truth.json"))  # fmt: skip
    assert res.returncode == 0, res.stderr
    assert "rotation 0.000 deg" in res.stdout and "nsv fit" in res.stdout
    res = nsv("fit", str(out), "--steps", "3", "--crop", "64", "--max-side", "128",
              "--eval-every", "3", "--checkpoint-every", "3")  # fmt: skip
    assert res.returncode == 0, res.stderr
    assert "held-out PSNR" in res.stdout


def test_distorted_nerf_capture_is_undistorted_on_import(capture, tmp_path):
    from engine.scene.colmap import read_model

    nerf = tmp_path / "nerf"
    shutil.copytree(capture / "nerf", nerf)
    meta = json.loads((nerf / "transforms.json").read_text())
    for f in meta["frames"]:
        f["k1"] = 0.02
    (nerf / "transforms.json").write_text(json.dumps(meta))
    out = tmp_path / "scene"
    import_capture(nerf, out, FAST)
    model = read_model(out)
    assert {c.model for c in model.cameras.values()} == {"PINHOLE"}
    scene = load_scene(out)
    assert len(scene.views) == 20 and all(v.has_image for v in scene.views)
    err = _pose_error(out, capture / "truth.json")
    assert err["rotation_deg_max"] < 1e-3  # poses pass through unchanged (text round trip)


def test_depth_range_reaches_beyond_the_sparse_points_and_is_checked(tmp_path):
    from engine.capture.importer import ImportOptions

    d = ImportOptions()
    assert d.depth_near < 1 < d.depth_far  # the background often has no sparse points
    (tmp_path / "photos").mkdir()
    res = nsv("import", str(tmp_path / "photos"), str(tmp_path / "out"), "--depth-range", "0", "2")
    assert_one_line_error(res, "--depth-range 0 2", "NEAR must be in (0, 1]")
    assert not (tmp_path / "out").exists()
    res = nsv("import", str(tmp_path / "photos"), str(tmp_path / "out"), "--coarse-levels", "9")
    assert_one_line_error(res, "--coarse-levels 9", "expected 1 to 4")
    assert not (tmp_path / "out").exists()


def test_headless_commands_show_the_stages_of_a_first_open(tmp_path):
    """`nsv render` on a capture without points computes them with the stages on stderr (the
    viewer shows the same in its status bar), and caches them for the next open."""
    from engine.synthetic.capture import write_capture

    write_capture(tmp_path, kinds=("nerf",), views=12, width=200, height=150)
    cap = tmp_path / "nerf"
    res = nsv("render", str(cap), "--out", str(tmp_path / "x.png"), "--size", "80x60")
    assert res.returncode == 0, res.stderr[-2000:]
    assert "triangulating" in res.stderr and "Traceback" not in res.stderr
    assert (cap / "nsv_points.ply").is_file()


def _sphere_and_wall_depth(cam, spheres, wall_z: float) -> torch.Tensor:
    """(H, W) depth of a wall at world z = ``wall_z`` and ``spheres`` [(centre, radius)] seen
    by ``cam`` (depth along the optical axis, as the plane sweep measures it)."""
    from engine.capture.planesweep import _pixel_grid

    rays_c = torch.from_numpy(np.linalg.inv(cam.K)).float() @ _pixel_grid(cam, "cpu")  # z = 1
    R = torch.from_numpy(cam.R).float()
    o = torch.from_numpy(cam.position).float()
    d = R.T @ rays_c  # world direction per pixel, scaled so camera z = 1
    depth = (wall_z - o[2]) / d[2]
    for c, r in spheres:
        oc = o - torch.tensor(c, dtype=torch.float32)
        a = (d * d).sum(0)
        b = 2 * (oc[:, None] * d).sum(0)
        disc = b * b - 4 * a * (oc @ oc - r * r)
        hit = (-b - disc.clamp_min(0).sqrt()) / (2 * a)
        depth = torch.where((disc > 0) & (hit > 0) & (hit < depth), hit, depth)
    return depth.reshape(cam.height, cam.width)


def test_fusion_drops_floaters_that_other_views_see_through():
    """A blob that three neighbouring depth maps agree on (a repeated mismatch) but that other
    views see the wall through is dropped; a real sphere that every view sees is kept."""
    from engine.camera import Camera
    from engine.capture.planesweep import SweepView, choose_neighbors, fuse

    cams = [Camera.look_at([4 * np.sin(a), 0.0, -4 * np.cos(a)], [0, 0, 0], [0, -1, 0], 64, 64, 50)
            for a in np.radians(np.linspace(-50, 50, 11))]  # fmt: skip
    sphere, floater = ([0.0, 0.0, 0.0], 0.6), ([0.0, 1.0, -2.0], 0.25)
    depths = []
    for i, c in enumerate(cams):
        with_floater = i in (4, 5, 6)  # the mismatch only these neighbouring views made
        depths.append(_sphere_and_wall_depth(c, [sphere] + [floater] * with_floater, 2.0))
    views = [SweepView(c, torch.full((3, 64, 64), 0.5), 1.0, 10.0) for c in cams]
    scores = [torch.ones(64, 64) for _ in cams]
    nbrs = choose_neighbors(cams, 4)
    checks = choose_neighbors(cams, 8, max_deg=60.0)

    def near(cloud, c, r):
        return int((np.linalg.norm(cloud.points - np.array(c), axis=1) < r + 0.05).sum())

    plain = fuse(views, depths, scores, nbrs)
    checked = fuse(views, depths, scores, nbrs, checks=checks)
    assert near(plain, *floater) > 20  # the neighbours' agreement alone keeps the floater
    assert near(checked, *floater) < 0.1 * near(plain, *floater)
    assert near(checked, *sphere) > 0.9 * near(plain, *sphere) > 100
