"""Path tracing with Mitsuba: camera convention, progressive accumulation, scene loading."""

from __future__ import annotations

import numpy as np
import pytest

mi = pytest.importorskip("mitsuba")

from engine.camera import rotation_about  # noqa: E402
from engine.errors import SceneError  # noqa: E402
from engine.mitsuba_scene import MitsubaScene  # noqa: E402
from engine.open_path import load_scene  # noqa: E402
from engine.pathtrace.progressive import PathTraceOptions, ProgressiveRenderer  # noqa: E402


@pytest.fixture(scope="module")
def box():
    return MitsubaScene("cornell-box", 48, 48)


def test_frame_buffers(box):
    cam = box.home_camera
    f = box.render(cam, spp=1, seed=0)
    assert f.radiance.shape == (48, 48, 3) and f.albedo.shape == (48, 48, 3)
    assert f.normal.shape == (48, 48, 3) and f.depth.shape == (48, 48)
    assert np.isfinite(f.radiance).all() and f.radiance.max() > 1.0  # the light is in view
    # Inside the box's opening every pixel hits a wall or a block within the box's extent;
    # outside it (the image border) rays escape and depth is 0.
    inner = f.depth[6:42, 6:42]
    assert (inner > 2.0).all() and (inner < 6.0).all()
    assert (f.depth[0] == 0).mean() > 0.5


def test_replayed_one_spp_frames_equal_traced_ones(box, monkeypatch):
    """1-spp frames replay a frozen Dr.Jit recording: after camera moves, size changes and new
    seeds they must equal what a freshly traced render gives, and new seeds must give new
    noise (a replay stuck on one seed would never converge)."""
    if box._render1 is None:
        pytest.skip("scalar Mitsuba variant: nothing is frozen")
    monkeypatch.setenv("NSV_MITSUBA_FREEZE", "0")
    traced = MitsubaScene("cornell-box", 48, 48)
    assert traced._render1 is None
    home = box.home_camera
    for i, (w, h) in enumerate([(48, 48), (48, 48), (32, 24), (48, 48), (32, 24), (48, 48)]):
        turn = np.eye(4)
        turn[:3, :3] = rotation_about([0, 1, 0], 0.02 * i)  # the box turns about its axis
        cam = home.resized(w, h).with_pose(home.world_to_camera @ turn)
        a, b = box.render(cam, 1, seed=i), traced.render(cam, 1, seed=i)
        assert a.radiance.shape == (h, w, 3)
        for name in ("radiance", "albedo", "normal", "depth"):
            assert np.array_equal(getattr(a, name), getattr(b, name)), (i, name)
    again = box.render(cam, 1, seed=99).radiance
    assert not np.array_equal(again, a.radiance)


def test_camera_convention_matches_ours(box):
    """The ceiling light is at the top of our image; rolling our camera 180 degrees about its
    viewing axis puts it at the bottom: Mitsuba sees what engine.camera says it sees."""
    cam = box.home_camera
    img = box.render(cam, spp=4, seed=1).radiance.mean(-1)
    row = np.unravel_index(np.argmax(img), img.shape)[0]
    assert row < 12
    R = rotation_about([0, 0, 1], np.pi) @ cam.R  # roll about the camera's own Z axis
    w2c = np.eye(4)
    w2c[:3, :3] = R
    w2c[:3, 3] = -R @ cam.position
    rolled = box.render(cam.with_pose(w2c), spp=4, seed=1).radiance.mean(-1)
    assert np.unravel_index(np.argmax(rolled), rolled.shape)[0] > 36
    # And a point projected by our camera lands where Mitsuba's depth says that surface is.
    f = box.render(cam, 1, 0)
    o, d = cam.pixel_ray(24.5, 30.5)
    p = o + d * f.depth[30, 24] / np.dot(d, cam.forward)
    uv, _ = cam.project(p[None])
    assert np.allclose(uv[0], [24.5, 30.5], atol=1e-3)


def test_progressive_accumulation_converges_and_resets(box):
    cam = box.home_camera
    ref = box.render(cam, spp=256, seed=12345).radiance
    pr = ProgressiveRenderer(box)
    errs = {}
    for _ in range(16):
        frame = pr.render(cam, PathTraceOptions())
        if pr.spp in (1, 16):
            errs[pr.spp] = float(((pr.mean["radiance"] - ref) ** 2).mean())
    assert frame.spp == 16 and frame.progressive
    assert errs[16] < errs[1] / 5  # Monte Carlo: MSE falls like 1/spp
    moved = cam.with_pose(np.linalg.inv(cam.camera_to_world @ _translate([0.1, 0, 0])))
    assert pr.render(moved).spp == 1  # any camera change restarts
    capped = ProgressiveRenderer(box)
    for _ in range(3):
        f = capped.render(cam, PathTraceOptions(max_spp=2))
    assert f.spp == 2 and not f.progressive


def _translate(t):
    m = np.eye(4)
    m[:3, 3] = t
    return m


def test_aov_views(box):
    pr = ProgressiveRenderer(box)
    cam = box.home_camera
    pr.render(cam)
    views = {
        v: pr.display(PathTraceOptions(view=v)) for v in ("color", "albedo", "normal", "depth")
    }
    for v, img in views.items():
        assert img.shape == (48, 48, 3) and img.dtype == np.uint8, v
    # Albedo of the left wall is red, the right wall green (no noise in the albedo AOV).
    alb = views["albedo"].astype(int)
    assert alb[24, 3, 0] > alb[24, 3, 1] and alb[24, 44, 1] > alb[24, 44, 0]


XML = """<scene version="3.0.0">
  <integrator type="path"/>
  <sensor type="perspective">
    <float name="fov" value="40"/>
    <transform name="to_world"><lookat origin="0, 1, 5" target="0, 0, 0" up="0, 1, 0"/></transform>
    <film type="hdrfilm"><integer name="width" value="32"/><integer name="height" value="24"/></film>
  </sensor>
  <shape type="sphere"><float name="radius" value="0.8"/>
    <bsdf type="diffuse"><rgb name="reflectance" value="0.8, 0.2, 0.2"/></bsdf></shape>
  <shape type="rectangle">
    <transform name="to_world"><rotate x="1" angle="-90"/><scale value="4"/><translate y="-0.8"/></transform>
    <bsdf type="diffuse"><rgb name="reflectance" value="0.6, 0.6, 0.6"/></bsdf></shape>
  <emitter type="constant"><rgb name="radiance" value="1.0"/></emitter>
</scene>
"""


def test_xml_scene_opens_with_its_camera(tmp_path):
    p = tmp_path / "scene.xml"
    p.write_text(XML)
    scene = load_scene(p)
    assert scene.num_points > 1000 and scene.pathtrace_source == str(p)
    home = scene.home_camera
    assert np.allclose(home.position, [0, 1, 5], atol=1e-4)
    ms = MitsubaScene(p, 32, 24)
    f = ms.render(ms.home_camera.resized(32, 24), spp=4)
    assert f.albedo[12, 16, 0] > f.albedo[12, 16, 1]  # the red sphere in the middle


def test_bad_xml_is_a_clear_error(tmp_path):
    p = tmp_path / "bad.xml"
    p.write_text("<scene version='3.0.0'><shape type='nope'/></scene>")
    with pytest.raises(SceneError, match=r"bad\.xml"):
        load_scene(p)


def test_reference_and_error_vs_spp(box):
    pr = ProgressiveRenderer(box)
    cam = box.home_camera
    errors = []
    for _ in range(16):
        f = pr.render(cam, PathTraceOptions(reference_spp=128))
        errors.append(f.error.noisy)
    assert f.error.spp == 16 and f.error.denoised is None
    assert errors[-1] < errors[0] / 4  # relMSE against the reference falls with spp
    ref_img = pr.render(cam, PathTraceOptions(view="reference", reference_spp=128)).image
    from engine.pathtrace.progressive import to_display

    assert np.array_equal(ref_img, to_display(pr.reference))


def test_bundled_mitsuba_scene_renders():
    from tests.conftest import ROOT

    path = ROOT / "assets" / "scenes" / "bunny_box.xml"
    scene = load_scene(path)
    assert scene.num_points > 10_000 and scene.pathtrace_source == str(path)
    ms = MitsubaScene(path, 40, 30)
    f = ms.render(ms.home_camera.resized(40, 30), spp=4)
    assert np.isfinite(f.radiance).all() and f.radiance.mean() > 0.05
    # The orange bunny sits right of centre: its albedo is warmer than the blue back wall.
    assert f.albedo[18, 24, 0] > f.albedo[18, 24, 2] and f.albedo[3, 20, 2] > f.albedo[3, 20, 0]


def test_nan_and_inf_samples_never_reach_the_display(monkeypatch):
    ms = MitsubaScene("cornell-box", 16, 16)
    real = ms.mi.render

    def poisoned(*args, **kw):
        arr = np.array(real(*args, **kw), dtype=np.float32)
        arr[2, 3, :] = np.nan
        arr[5, 7, 0] = np.inf
        return arr

    monkeypatch.setattr(ms.mi, "render", poisoned)
    f = ms.render(ms.home_camera, 1)
    for buf in (f.radiance, f.albedo, f.normal, f.depth):
        assert np.isfinite(buf).all()
    frame = ProgressiveRenderer(ms).render(ms.home_camera, PathTraceOptions())
    assert frame.image.dtype == np.uint8 and frame.image[2, 3].tolist() == [0, 0, 0]


def test_seeds_beyond_32_bits_are_folded(box):
    a = box.render(box.home_camera, 1, seed=2**33 + 5)
    b = box.render(box.home_camera, 1, seed=5)
    assert np.array_equal(a.radiance, b.radiance)


def test_moving_film_is_prepared_after_the_first_sample_and_sizes_are_kept_built():
    """A new film size costs Mitsuba a rebuild (JIT variants compile for it): the renderer
    prepares the moving size after a still view's first sample, and switching between sizes
    already built rebuilds nothing."""
    ms = MitsubaScene("cornell-box", 48, 48)
    cam = ms.home_camera.scaled(64 / 48)
    pr = ProgressiveRenderer(ms)
    opts = PathTraceOptions(moving_scale=0.5)
    first = pr.render(cam, opts)
    assert first.build_ms > 0  # 64x64 is new
    assert (32, 32) not in ms._built
    second = pr.render(cam, opts)
    assert second.spp == 2 and (32, 32) in ms._built  # prepared for moving
    built = ms.build_ms
    moving = pr.render(cam.scaled(0.5), opts)
    assert moving.image.shape[:2] == (32, 32) and moving.build_ms == 0
    still = pr.render(cam, opts)
    assert still.spp == 1 and still.build_ms == 0 and ms.build_ms == built
    # Without a moving scale nothing extra is built.
    ms2 = MitsubaScene("cornell-box", 48, 48)
    pr2 = ProgressiveRenderer(ms2)
    for _ in range(3):
        pr2.render(cam, PathTraceOptions())
    assert set(ms2._built) == {(48, 48), (64, 64)}
