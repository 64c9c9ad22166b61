"""LAS/LAZ, PCD and XYZ/PTS point clouds, written here with the formats' own tools (laspy) or
by hand following their specs; georeferenced coordinates keep their precision."""

from __future__ import annotations

import numpy as np
import pytest

from engine.errors import NsvError
from engine.open_path import load_scene

laspy = pytest.importorskip("laspy")


def _las(path, n=500, rgb=True, offset=(4_000_000.0, 5_000_000.0, 300.0), seed=0):
    rng = np.random.default_rng(seed)
    header = laspy.LasHeader(point_format=3 if rgb else 1, version="1.2")
    header.offsets = np.array(offset)
    header.scales = np.array([0.001, 0.001, 0.001])
    las = laspy.LasData(header)
    xyz = np.array(offset) + rng.uniform(-50, 50, (n, 3))
    las.x, las.y, las.z = xyz[:, 0], xyz[:, 1], xyz[:, 2]
    las.intensity = rng.integers(0, 4000, n).astype(np.uint16)
    if rgb:
        col = rng.integers(0, 65535, (n, 3)).astype(np.uint16)
        las.red, las.green, las.blue = col[:, 0], col[:, 1], col[:, 2]
    las.write(str(path))
    return xyz


@pytest.mark.parametrize("suffix", [".las", ".laz"])
def test_las_and_laz_recentred_without_losing_precision(tmp_path, suffix):
    xyz = _las(tmp_path / f"c{suffix}")
    s = load_scene(tmp_path / f"c{suffix}")
    assert s.num_points == 500 and s.colors is not None
    assert np.abs(s.points).max() < 100  # recentred: float32 keeps millimetres here
    back = s.points.astype(np.float64) + s.origin
    assert np.abs(back - xyz).max() < 2e-3  # the file's 1 mm quantisation, not float32's 0.5 m
    assert 0 <= s.colors.min() and s.colors.max() <= 1 and s.colors.max() > 0.5


def test_las_without_rgb_shows_intensity(tmp_path):
    _las(tmp_path / "i.las", rgb=False)
    s = load_scene(tmp_path / "i.las")
    assert s.colors is not None and np.allclose(s.colors[:, 0], s.colors[:, 1])
    assert s.colors.std() > 0.1


def test_las_classes_are_kept_and_drawn_in_their_colours(tmp_path):
    from engine.camera import Camera
    from engine.modes import MODES, build_renderers
    from engine.points.render import PointRenderOptions
    from engine.points.shading import CLASS_COLORS

    _las(tmp_path / "c.las", rgb=False)
    assert load_scene(tmp_path / "c.las").classes is None  # all 0: never classified
    las = laspy.read(str(tmp_path / "c.las"))
    las.classification = np.where(np.asarray(las.x) < 4_000_000, 2, 9).astype(np.uint8)
    las.write(str(tmp_path / "k.las"))
    s = load_scene(tmp_path / "k.las")
    assert s.classes is not None and set(np.unique(s.classes)) == {2, 9}
    assert (s.classes == 2).sum() == (np.asarray(las.x) < 4_000_000).sum()
    renderers = build_renderers(s)
    assert renderers.available(MODES["classes"])
    assert not build_renderers(load_scene(tmp_path / "c.las")).available(MODES["classes"])
    cam = Camera.look_at([0, 0, 150], [0, 0, 0], [0, 1, 0], 64, 64, 60)
    img = renderers.points.render(cam, PointRenderOptions("classes", 3)).image.astype(float)
    ground, water = (np.asarray(CLASS_COLORS[c][1]) * 255 for c in (2, 9))
    # x < 0 (ground) on one side, water on the other: each colour fills part of the view
    assert (np.abs(img - ground).max(-1) < 3).mean() > 0.1
    assert (np.abs(img - water).max(-1) < 3).mean() > 0.1
    # From the command line, and refused in plain words for a cloud without classes.
    from tests.helpers import assert_one_line_error, nsv

    res = nsv("render", str(tmp_path / "k.las"), "--mode", "classes", "--size", "64x48",
              "--out", str(tmp_path / "k.png"))  # fmt: skip
    assert res.returncode == 0 and (tmp_path / "k.png").is_file(), res.stderr
    res = nsv(
        "render", str(tmp_path / "c.las"), "--mode", "classes", "--out", str(tmp_path / "x.png")
    )
    assert_one_line_error(res, "LAS/LAZ")


def test_xyz_and_pts_columns(tmp_path):
    rng = np.random.default_rng(1)
    p = rng.normal(size=(50, 3))
    rgb = rng.integers(0, 256, (50, 3))
    (tmp_path / "a.xyz").write_text("\n".join(" ".join(map(str, r)) for r in p))
    rows = [
        f"{a:.6f},{b:.6f},{c:.6f},{r},{g},{bb}"
        for (a, b, c), (r, g, bb) in zip(p, rgb, strict=True)
    ]
    (tmp_path / "b.txt").write_text("x,y,z,r,g,b\n" + "\n".join(rows))
    pts = [f"{a} {b} {c} 7 {r} {g} {bb}" for (a, b, c), (r, g, bb) in zip(p, rgb, strict=True)]
    (tmp_path / "c.pts").write_text("50\n" + "\n".join(pts))
    a, b, c = (load_scene(tmp_path / n) for n in ("a.xyz", "b.txt", "c.pts"))
    assert a.num_points == b.num_points == c.num_points == 50 and a.colors is None
    np.testing.assert_allclose(b.points, p, atol=1e-5)
    np.testing.assert_allclose(b.colors, rgb / 255, atol=1e-6)
    np.testing.assert_allclose(c.colors, rgb / 255, atol=1e-6)


def _pcd(path, p, rgb, data="ascii"):
    packed = (rgb[:, 0].astype(np.uint32) << 16) | (rgb[:, 1].astype(np.uint32) << 8) | rgb[:, 2]
    head = (f"# .PCD v0.7\nVERSION 0.7\nFIELDS x y z rgb\nSIZE 4 4 4 4\nTYPE F F F U\n"
            f"COUNT 1 1 1 1\nWIDTH {len(p)}\nHEIGHT 1\nVIEWPOINT 0 0 0 1 0 0 0\n"
            f"POINTS {len(p)}\nDATA {data}\n")  # fmt: skip
    if data == "ascii":
        body = "\n".join(f"{a} {b} {c} {q}" for (a, b, c), q in zip(p, packed, strict=True))
        path.write_text(head + body + "\n")
    else:
        rec = np.zeros(len(p), [("x", "f4"), ("y", "f4"), ("z", "f4"), ("rgb", "u4")])
        rec["x"], rec["y"], rec["z"], rec["rgb"] = p[:, 0], p[:, 1], p[:, 2], packed
        path.write_bytes(head.encode() + rec.tobytes())


@pytest.mark.parametrize("data", ["ascii", "binary"])
def test_pcd(tmp_path, data):
    rng = np.random.default_rng(2)
    p = rng.normal(size=(40, 3)).astype(np.float32)
    rgb = rng.integers(0, 256, (40, 3))
    _pcd(tmp_path / "c.pcd", p, rgb, data)
    s = load_scene(tmp_path / "c.pcd")
    np.testing.assert_allclose(s.points, p, atol=1e-5)
    np.testing.assert_allclose(s.colors, rgb / 255, atol=1e-6)


def test_damaged_point_files_are_refused_in_plain_words(tmp_path):
    from tests.test_damaged_files import _check_refusal

    _las(tmp_path / "ok.las")
    good = (tmp_path / "ok.las").read_bytes()
    rng = np.random.default_rng(3)
    p = rng.normal(size=(40, 3)).astype(np.float32)
    _pcd(tmp_path / "ok.pcd", p, rng.integers(0, 256, (40, 3)), "binary")
    pcd = (tmp_path / "ok.pcd").read_bytes()
    bad = {
        "empty.las": b"",
        "truncated.las": good[: len(good) // 2],
        "magic.las": b"XXXX" + good[4:],
        "header.laz": good[:200],
        "truncated.pcd": pcd[: len(pcd) - 200],
        "huge.pcd": pcd.replace(b"POINTS 40", b"POINTS 1099511627776"),
        "nofields.pcd": pcd.replace(b"FIELDS x y z rgb", b"FIELDS a b c rgb"),
        "compressed.pcd": pcd.replace(b"DATA binary", b"DATA binary_compressed"),
        "text.xyz": b"1 2 3\n4 five 6\n",
        "short.xyz": b"1 2\n3 4\n",
        "ragged.xyz": b"1 2 3\n4 5 6 7\n",
        "empty.xyz": b"",
    }
    for name, content in bad.items():
        path = tmp_path / name
        path.write_bytes(content)
        with pytest.raises(NsvError) as e:
            load_scene(path)
        _check_refusal(path, e.value)


def test_meshes_are_sampled_to_coloured_points(tmp_path):
    import trimesh

    box = trimesh.creation.box((2, 1, 1))
    box.visual.face_colors = np.tile([200, 30, 30, 255], (len(box.faces), 1))
    box.export(tmp_path / "box.glb")
    box.export(tmp_path / "box.stl")
    glb, stl = load_scene(tmp_path / "box.glb"), load_scene(tmp_path / "box.stl")
    for s in (glb, stl):
        assert s.num_points > 100_000 and s.normals is not None
        assert np.abs(s.points).max(0) == pytest.approx([1, 0.5, 0.5], abs=1e-4)
    assert glb.colors is not None and np.allclose(
        glb.colors.mean(0), [200 / 255, 30 / 255, 30 / 255], atol=0.02
    )
    (tmp_path / "bad.obj").write_text("v 0 0 0\nv 1 0 0\nf 1 2 9\n")
    with pytest.raises(NsvError):
        load_scene(tmp_path / "bad.obj")


def _e57(path, scans):
    """Write an E57 file with pye57 (the reader's own library): scans = [(xyz, rgb or None,
    translation)]."""
    pye57 = pytest.importorskip("pye57")
    e57 = pye57.E57(str(path), mode="w")
    for xyz, rgb, t in scans:
        data = {"cartesianX": xyz[:, 0], "cartesianY": xyz[:, 1], "cartesianZ": xyz[:, 2]}
        if rgb is not None:
            data |= {"colorRed": rgb[:, 0], "colorGreen": rgb[:, 1], "colorBlue": rgb[:, 2]}
        else:
            data["intensity"] = np.linspace(0, 1, len(xyz))
        e57.write_scan_raw(data, translation=np.asarray(t, np.float64))
    e57.close()


def test_e57_scans_are_placed_by_their_poses_with_colours(tmp_path):
    rng = np.random.default_rng(4)
    a, b = rng.uniform(-1, 1, (300, 3)), rng.uniform(-1, 1, (200, 3))
    rgb = rng.integers(0, 256, (300, 3)).astype(np.uint8)
    _e57(tmp_path / "two.e57", [(a, rgb, [0, 0, 0]), (b, rgb[:200], [10.0, 0, 0])])
    s = load_scene(tmp_path / "two.e57")
    assert s.num_points == 500
    pts = np.sort(s.points[:, 0])
    assert pts[:300].max() < 1.01 and pts[300:].min() > 8.99  # the second scan moved by +10 x
    assert np.allclose(s.colors[:300] * 255, rgb, atol=0.6)
    _e57(tmp_path / "grey.e57", [(a, None, [0, 0, 0])])
    g = load_scene(tmp_path / "grey.e57")
    assert np.allclose(g.colors[:, 0], g.colors[:, 2]) and g.colors.std() > 0.1  # intensity


def test_damaged_e57_files_are_refused_in_plain_words(tmp_path):
    from tests.test_damaged_files import _check_refusal

    rng = np.random.default_rng(5)
    _e57(tmp_path / "ok.e57", [(rng.uniform(-1, 1, (400, 3)), None, [0, 0, 0])])
    good = (tmp_path / "ok.e57").read_bytes()
    flipped = bytearray(good)
    flipped[len(good) // 2 : len(good) // 2 + 64] = bytes(64)
    bad = {
        "empty.e57": b"",
        "magic.e57": b"XXXX" + good[4:],
        "truncated.e57": good[: len(good) // 2],
        "header.e57": good[:40],
        "zeroed.e57": bytes(flipped),
    }
    for name, content in bad.items():
        path = tmp_path / name
        path.write_bytes(content)
        try:
            load_scene(path)
        except NsvError as e:
            _check_refusal(path, e)
        else:  # a damaged payload may still decode; then it must at least be usable
            assert name == "zeroed.e57"
