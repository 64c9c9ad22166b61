"""A corpus of damaged files of every scene format the app reads, generated here: truncated,
garbled, bit-flipped, wrong or huge counts, NaN, empty, wrong magic. Each either loads or is
refused with one line that names the file and says what is wrong in the file's own terms: no
traceback, no Python internals, no huge allocation."""

from __future__ import annotations

import json
import re
import shutil
import struct
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from engine.errors import NsvError
from engine.open_path import load_scene
from engine.scene.colmap import read_model, write_model
from tests.conftest import ROOT
from tests.helpers import write_cloud, write_colmap_with_photos

# What a message must not contain: Python's own words for what went wrong.
LEAKS = re.compile(
    r"Traceback|Error\b|Exception|list index|out of range|unpack|expected \d|object has no|"
    r"NoneType|invalid literal|could not convert|^'|: '\w+'$|Unable to allocate"
)


def _check_refusal(path: Path, err: NsvError) -> None:
    msg = str(err)
    assert "\n" not in msg, msg
    assert msg.startswith(str(path)), msg  # names the file (or the file inside the folder)
    assert not LEAKS.search(msg.split(": ", 1)[1]), msg


def _load(path: Path):
    try:
        scene = load_scene(path)
    except NsvError as e:
        _check_refusal(path, e)
        return None
    assert np.isfinite(scene.points).all()  # what loads is usable
    return scene


def _ply_variants(tmp: Path) -> dict[str, Path]:
    good = write_cloud(tmp / "good.ply", 400)
    data = good.read_bytes()
    head_end = data.index(b"end_header\n") + len(b"end_header\n")
    header, body = data[:head_end], data[head_end:]
    rng = np.random.default_rng(0)

    def put(name: str, content: bytes) -> Path:
        p = tmp / name
        p.write_bytes(content)
        return p

    flipped = bytearray(data)
    for i in rng.integers(head_end, len(data), 40):
        flipped[i] ^= 1 << int(rng.integers(8))
    garbled = bytearray(header)
    garbled[20:40] = bytes(rng.integers(0, 256, 20, dtype=np.uint8))
    ascii_ply = b"ply\nformat ascii 1.0\nelement vertex 3\nproperty float x\nproperty float y\n"
    ascii_ply += b"property float z\nend_header\n0 0 0\n1 1 1\n2 2 2\n"
    return {
        "empty": put("empty.ply", b""),
        "truncated": put("truncated.ply", data[: head_end + len(body) // 2]),
        "header only": put("header_only.ply", header),
        "bit flips": put("flipped.ply", bytes(flipped)),
        "garbled header": put("garbled.ply", bytes(garbled)),
        "wrong magic": put("magic.ply", b"PK\x03\x04" + data[4:]),
        "huge count": put(
            "huge.ply", header.replace(b"vertex 400", b"vertex 1099511627776") + body
        ),
        "quad type": put("quad.ply", data.replace(b"property float x", b"property quad x")),
        "no xyz": put("noxyz.ply", data.replace(b"property float x", b"property float u")),
        "bad element": put("element.ply", data.replace(b"element vertex 400", b"element vertex")),
        "ascii short": put("ascii_short.ply", ascii_ply.replace(b"vertex 3", b"vertex 9")),
        "ascii text": put("ascii_text.ply", ascii_ply.replace(b"1 1 1", b"1 one 1")),
        "ascii NaN": put("ascii_nan.ply", ascii_ply.replace(b"1 1 1", b"nan 1 inf")),
    }


def test_damaged_ply_files_are_refused_in_plain_words(tmp_path):
    for kind, path in _ply_variants(tmp_path).items():
        scene = _load(path)
        if kind not in ("bit flips", "ascii NaN"):
            assert scene is None, f"{kind}: loaded a damaged file"
    with pytest.raises(NsvError, match="declares 1,099,511,627,776 vertices"):
        load_scene(tmp_path / "huge.ply")
    with pytest.raises(NsvError, match="unknown PLY property type 'quad'"):
        load_scene(tmp_path / "quad.ply")
    with pytest.raises(NsvError, match="no x/y/z"):
        load_scene(tmp_path / "noxyz.ply")
    with pytest.raises(NsvError, match="bad 'element' line"):
        load_scene(tmp_path / "element.ply")


@pytest.fixture(scope="module")
def colmap_bin(tmp_path_factory) -> Path:
    tmp = tmp_path_factory.mktemp("colmap")
    root, _ = write_colmap_with_photos(tmp / "cap", n_views=4, n_points=300)
    m = read_model(root)
    out = tmp / "bin"
    shutil.copytree(root / "images", out / "images")
    write_model(out / "sparse" / "0", list(m.cameras.values()), list(m.images.values()),
                m.xyz, m.rgb, binary=True)  # fmt: skip
    return out


@pytest.mark.parametrize("name", ["cameras.bin", "images.bin", "points3D.bin"])
def test_damaged_colmap_binary_files_are_refused_in_plain_words(colmap_bin, tmp_path, name):
    rng = np.random.default_rng(1)
    original = (colmap_bin / "sparse" / "0" / name).read_bytes()
    flipped = bytearray(original)
    for i in rng.integers(8, len(original), 30):
        flipped[i] ^= 0xFF
    variants = {
        "empty": b"",
        "truncated": original[: len(original) // 2],
        "huge count": struct.pack("<Q", 1 << 40) + original[8:],
        "garbled": bytes(rng.integers(0, 256, len(original), dtype=np.uint8)),
        "bit flips": bytes(flipped),
    }
    for kind, content in variants.items():
        scene_dir = tmp_path / kind.replace(" ", "_")
        shutil.copytree(colmap_bin, scene_dir)
        (scene_dir / "sparse" / "0" / name).write_bytes(content)
        scene = _load(scene_dir)
        if kind in ("empty", "truncated", "huge count"):
            assert scene is None, f"{name} {kind}: loaded"
    huge = tmp_path / "huge_count"
    with pytest.raises(NsvError, match="declares 1,099,511,627,776"):
        load_scene(huge)


def test_damaged_colmap_text_and_transforms_are_refused_in_plain_words(tmp_path):
    root, _ = write_colmap_with_photos(tmp_path / "cap", n_views=4, n_points=300)
    model = root / "sparse" / "0"
    for name, bad in (("cameras.txt", "1 PINHOLE 100\n"), ("images.txt", "1 0.5 x\n\n"),
                      ("points3D.txt", "1 0 0 zero 1 2 3 0.1\n")):  # fmt: skip
        keep = (model / name).read_text()
        (model / name).write_text(bad)
        assert _load(root) is None, name
        (model / name).write_text(keep)
    nerf = tmp_path / "nerf"
    nerf.mkdir()
    for content in ("{", "[]", '{"frames": 3}', '{"frames": [{"transform_matrix": "x"}]}',
                    '{"camera_angle_x": "wide", "frames": []}'):  # fmt: skip
        (nerf / "transforms.json").write_text(content)
        assert _load(nerf) is None, content


def test_cli_refuses_a_damaged_file_with_one_line(tmp_path, colmap_bin):
    bad = tmp_path / "scene"
    shutil.copytree(colmap_bin, bad)
    pts = bad / "sparse" / "0" / "points3D.bin"
    pts.write_bytes(struct.pack("<Q", 1 << 40) + pts.read_bytes()[8:])
    res = subprocess.run(
        [sys.executable, "-m", "nsv", "render", str(bad), "--out", str(tmp_path / "x.png")],
        cwd=ROOT, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert res.returncode == 1
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("nsv: error: ") and "points3D.bin" in lines[0]
    assert "Traceback" not in res.stderr
    cam = tmp_path / "shot.camera.json"
    cam.write_text(json.dumps({"width": "wide"}))
    res = subprocess.run(
        [sys.executable, "-m", "nsv", "render", str(colmap_bin), "--camera", str(cam),
         "--out", str(tmp_path / "y.png")],
        cwd=ROOT, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert res.returncode == 1 and len(res.stderr.strip().splitlines()) == 1, res.stderr


def test_damaged_gaussian_splatting_files_are_refused_in_plain_words(tmp_path):
    """3DGS PLYs and .splat files: truncated, a huge declared count, garbled ASCII rows,
    impossible SH counts, all Gaussians invalid (NaN, zero quaternions, zero scales)."""
    from tests.test_gaussians import random_scene, write_3dgs_ply

    rng = np.random.default_rng(3)
    arrays = list(random_scene(rng, n=30, degree=1))
    good = write_3dgs_ply(tmp_path / "good_gs.ply", *arrays)
    data = good.read_bytes()
    cases = {
        "truncated": data[: len(data) - 64],
        "huge count": data.replace(b"element vertex 30", b"element vertex 1099511627776", 1),
        "empty body": data[: data.index(b"end_header\n") + 11],
    }
    paths = {k: tmp_path / f"gs_{i}.ply" for i, k in enumerate(cases)}
    for k, content in cases.items():
        paths[k].write_bytes(content)
    nan = [a.copy() for a in arrays]
    nan[0][:] = np.nan
    paths["all NaN"] = write_3dgs_ply(tmp_path / "gs_nan.ply", *nan)
    zq = [a.copy() for a in arrays]
    zq[2][:] = 0.0
    paths["zero quaternions"] = write_3dgs_ply(tmp_path / "gs_zq.ply", *zq)
    bad_rest = [a.copy() for a in arrays]
    bad_rest[4] = bad_rest[4][:, :3]
    paths["6 f_rest"] = write_3dgs_ply(tmp_path / "gs_rest.ply", *bad_rest)
    asc = write_3dgs_ply(tmp_path / "gs_ascii.ply", *arrays, fmt="ascii")
    lines = asc.read_bytes().split(b"\n")
    at = lines.index(b"end_header") + 4
    lines[at] = lines[at].replace(b" ", b" nope ", 1)
    asc.write_bytes(b"\n".join(lines))
    paths["ascii row"] = asc
    (tmp_path / "odd.splat").write_bytes(b"\x01" * 70)
    paths["splat size"] = tmp_path / "odd.splat"
    (tmp_path / "zero.splat").write_bytes(np.zeros((3, 8), "<f4").tobytes())
    paths["splat zero scales"] = tmp_path / "zero.splat"
    for kind, path in paths.items():
        assert _load(path) is None, f"{kind}: loaded a damaged file"
    with pytest.raises(NsvError, match="vertex row 3"):
        load_scene(asc)
    with pytest.raises(NsvError, match="declares 1,099,511,627,776 vertices"):
        load_scene(paths["huge count"])


def test_an_ascii_ply_with_a_garbled_row_names_the_row(tmp_path):
    p = tmp_path / "garbled.ply"
    p.write_bytes(b"ply\nformat ascii 1.0\nelement vertex 3\nproperty float x\nproperty float y\n"
                  b"property float z\nend_header\n0 0 0\n1 one 1\n2 2 2\n")  # fmt: skip
    with pytest.raises(NsvError, match=r"vertex row 1: 'one' is not a number"):
        load_scene(p)
