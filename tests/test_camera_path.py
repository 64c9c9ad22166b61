"""Camera paths: interpolation, our JSON and nerfstudio's camera_path.json, bad files, and
`nsv render --path` to MP4 / PNG frames."""

from __future__ import annotations

import json

import numpy as np
import pytest

from engine.camera import Camera
from engine.camera_path import GL_TO_CV, CameraPath, Keyframe
from engine.errors import NsvError
from tests.conftest import ROOT
from tests.helpers import assert_one_line_error, nsv


def orbit_path(n: int = 4) -> CameraPath:
    keys = []
    for i in range(n):
        a = i * 0.6
        cam = Camera.look_at([3 * np.sin(a), -0.5, 3 * np.cos(a)], [0, 0, 0], [0, -1, 0], 64, 48,
                             40 + 5 * i)  # fmt: skip
        keys.append(Keyframe.from_camera(cam, duration=0.5 + 0.25 * i))
    return CameraPath(keys, 64, 48, 10)


def test_interpolation_passes_through_keyframes_and_is_smooth():
    path = orbit_path()
    t = 0.0
    for k in path.keyframes:
        cam = path.camera_at(t)
        assert np.allclose(cam.camera_to_world, k.camera_to_world, atol=1e-9)
        assert cam.fov_y_deg == pytest.approx(k.fov)
        t += k.duration
    assert path.duration == pytest.approx(0.5 + 0.75 + 1.0)
    assert path.num_frames == len(path.cameras()) == round(2.25 * 10) + 1
    # Small time steps give small moves (no jumps at keyframes); rotations stay rotations.
    cams = path.cameras(fps=200)
    pos = np.array([c.position for c in cams])
    steps = np.linalg.norm(np.diff(pos, axis=0), axis=1)
    assert steps.max() < 4 * np.median(steps)
    for c in cams[::17]:
        R = c.camera_to_world[:3, :3]
        assert np.allclose(R @ R.T, np.eye(3), atol=1e-9) and np.linalg.det(R) == pytest.approx(1)


def test_our_json_round_trip(tmp_path):
    path = orbit_path()
    path.save(tmp_path / "p.json")
    back = CameraPath.load(tmp_path / "p.json")
    assert (back.width, back.height, back.fps) == (64, 48, 10)
    for a, b in zip(path.keyframes, back.keyframes, strict=True):
        assert np.allclose(a.camera_to_world, b.camera_to_world) and a.fov == b.fov
        assert a.duration == b.duration


def test_nerfstudio_round_trip_and_axes(tmp_path):
    path = orbit_path()
    path.save(tmp_path / "camera_path.json", nerfstudio=True)
    data = json.loads((tmp_path / "camera_path.json").read_text())
    assert data["render_width"] == 64 and len(data["camera_path"]) == path.num_frames
    # nerfstudio's camera looks down its -Z axis: the same direction as ours.
    first = np.array(data["camera_path"][0]["camera_to_world"]).reshape(4, 4)
    assert np.allclose(-first[:3, 2], path.camera_at(0).forward)
    back = CameraPath.load(tmp_path / "camera_path.json")
    ours, theirs = path.cameras(), back.cameras()
    assert len(ours) == len(theirs)
    for a, b in zip(ours, theirs, strict=True):  # the same frames, exactly
        assert np.allclose(a.world_to_camera, b.world_to_camera, atol=1e-9)
        assert a.fy == pytest.approx(b.fy)


def test_a_hand_written_nerfstudio_file(tmp_path):
    c2w = np.eye(4)
    c2w[:3, 3] = [0, 0, 5]  # at +Z, looking down -Z (towards the origin), +Y up
    frame = {"camera_to_world": c2w.ravel().tolist(), "fov": 50, "aspect": 1.5}
    doc = {"render_width": 96, "render_height": 64, "fps": 24, "seconds": 1 / 24,
           "camera_path": [frame, frame]}  # fmt: skip
    (tmp_path / "camera_path.json").write_text(json.dumps(doc))
    cam = CameraPath.load(tmp_path / "camera_path.json").camera_at(0)
    assert np.allclose(cam.forward, [0, 0, -1]) and np.allclose(cam.position, [0, 0, 5])
    assert np.allclose(cam.camera_to_world[:3, 1], [0, -1, 0])  # our y points down the image
    assert (cam.width, cam.height) == (96, 64) and cam.fov_y_deg == pytest.approx(50)
    assert np.allclose(GL_TO_CV @ GL_TO_CV, np.eye(4))


@pytest.mark.parametrize(
    "text, words",
    [
        ("{not json", "not a JSON file"),
        ("[1, 2]", "expected a JSON object"),
        ('{"frames": []}', "no 'keyframes'"),
        ('{"keyframes": []}', "non-empty list"),
        ('{"keyframes": [{"camera_to_world": [1, 2, 3]}]}', "16 finite numbers, got 3"),
        ('{"keyframes": [{"camera_to_world": "abc"}]}', "not a list of numbers"),
        ('{"camera_path": [{"camera_to_world": [0,0,0,0, 0,0,0,0, 0,0,0,0, 0,0,0,1]}]}',
         "degenerate rotation"),
        ('{"keyframes": [{"camera_to_world": [1,0,0,0, 0,1,0,0, 0,0,1,0, 0,0,0,1], '
         '"fov": "wide"}]}', "'fov' must be a number"),
        ('{"camera_path": [{"camera_to_world": [1,0,0,0, 0,1,0,0, 0,0,1,0, 0,0,0,1]}], '
         '"fps": -3}', "'fps' = -3.0 is out of range"),
    ],
)  # fmt: skip
def test_bad_camera_path_files_are_one_plain_line(tmp_path, text, words):
    f = tmp_path / "bad.json"
    f.write_text(text)
    with pytest.raises(NsvError, match=words) as e:
        CameraPath.load(f)
    assert str(f) in str(e.value) and "\n" not in str(e.value)


def test_render_a_two_second_flight_of_the_demo(tmp_path):
    import imageio.v3 as iio

    pytest.importorskip("imageio_ffmpeg")
    demo = ROOT / "assets" / "demo" / "armadillo_bunny.ply"
    keys = [
        Keyframe.from_camera(Camera.look_at([3 * np.sin(a), -0.8, 3 * np.cos(a)], [0, 0, 0],
                                            [0, -1, 0], 64, 48, 45), 1.0)
        for a in (0.0, 0.8, 1.6)
    ]  # fmt: skip
    CameraPath(keys, 64, 48, 15).save(tmp_path / "path.json")
    res = nsv("render", str(demo), "--path", str(tmp_path / "path.json"), "--out",
              str(tmp_path / "flight.mp4"))  # fmt: skip
    assert res.returncode == 0, res.stderr
    import imageio.v2 as iio2

    reader = iio2.get_reader(tmp_path / "flight.mp4")
    frames = [f for f in reader]
    assert len(frames) == 31 and frames[0].shape == (48, 64, 3)
    assert np.abs(frames[0].astype(int) - frames[-1].astype(int)).mean() > 2  # it flew
    # A PNG sequence at another size and frame rate.
    res = nsv("render", str(demo), "--path", str(tmp_path / "path.json"), "--out",
              str(tmp_path / "pngs"), "--size", "32x24", "--fps", "5")  # fmt: skip
    assert res.returncode == 0, res.stderr
    pngs = sorted((tmp_path / "pngs").glob("frame_*.png"))
    assert len(pngs) == 11 and iio.imread(pngs[0]).shape == (24, 32, 3)
    (tmp_path / "bad.json").write_text("{}")
    assert_one_line_error(
        nsv("render", str(demo), "--path", str(tmp_path / "bad.json"), "--out",
            str(tmp_path / "x.mp4")), "bad.json")  # fmt: skip


def test_render_a_denoised_path_traced_flight(tmp_path):
    import imageio.v3 as iio

    pytest.importorskip("mitsuba")
    keys = [
        Keyframe.from_camera(Camera.look_at([x, 0.0, 3.9], [0, 0, 0], [0, 1, 0], 32, 32, 39), 0.2)
        for x in (0.0, 0.3)
    ]
    CameraPath(keys, 32, 32, 10).save(tmp_path / "path.json")
    out = tmp_path / "frames"
    args = ["render", "cornell-box", "--path", str(tmp_path / "path.json"), "--mode", "pathtrace",
            "--spp", "2", "--out", str(out)]  # fmt: skip
    assert nsv(*args).returncode == 0
    noisy = [iio.imread(p).astype(int) for p in sorted(out.glob("*.png"))]
    res = nsv(*args[:-1], str(tmp_path / "dn"), "--denoise")
    assert res.returncode == 0, res.stderr
    clean = [iio.imread(p).astype(int) for p in sorted((tmp_path / "dn").glob("*.png"))]
    assert len(noisy) == len(clean) == 3

    def roughness(img):  # mean difference between neighbouring pixels: noise
        return np.abs(np.diff(img, axis=1)).mean()

    assert all(roughness(c) < 0.7 * roughness(n) for c, n in zip(clean, noisy, strict=True))
