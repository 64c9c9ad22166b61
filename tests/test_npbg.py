"""Neural point-based graphics: network, model persistence, fitting and resume (tiny data)."""

from __future__ import annotations

import dataclasses
import json
import time

import numpy as np
import pytest
import torch

from engine.camera import Camera
from engine.errors import NsvError
from engine.images import resample_image, shift_image
from engine.metrics import psnr
from engine.npbg.data import ViewSet, fill_fit_focal
from engine.npbg.fit import FitConfig, Fitter, make_target
from engine.npbg.model import NeuralPointModel, pad_camera, sample_environment
from engine.npbg.network import NetworkConfig, RenderingNetwork
from engine.npbg.render import NeuralRenderer, NeuralRenderOptions
from engine.open_path import load_scene
from tests.helpers import write_colmap_with_photos

SMALL = NetworkConfig(descriptor_dim=8, num_scales=3, channels=[8, 12, 16])


def test_network_output_shape_and_range():
    net = RenderingNetwork(SMALL)
    xs = [torch.randn(2, 8, 32 >> s, 48 >> s) for s in range(3)]
    out = net(xs)
    assert out.shape == (2, 3, 32, 48)
    assert out.min() >= 0 and out.max() <= 1


FAST = NetworkConfig(descriptor_dim=8, num_scales=3, channels=[8, 12], convs=1, fold_finest=True)


@pytest.mark.parametrize("pixel_head", [0, 4])
def test_folded_network_sees_every_full_resolution_descriptor(pixel_head):
    """The fast layout never convolves the finest level, but each output pixel still depends
    on its own full-resolution descriptor (folded, not averaged away) and the output is
    full resolution."""
    torch.manual_seed(0)
    net = RenderingNetwork(NetworkConfig(**{**FAST.__dict__, "pixel_head": pixel_head}))
    xs = [torch.randn(1, 8, 16 >> s, 24 >> s, requires_grad=s == 0) for s in range(3)]
    out = net(xs)
    assert out.shape == (1, 3, 16, 24) and 0 <= out.min() and out.max() <= 1
    out[0, :, 5, 7].sum().backward()
    g = xs[0].grad[0].abs().sum(0)
    assert g[5, 7] > 0  # its own descriptor
    assert g[5, 6] > 0 and g[4, 7] > 0  # and its neighbours in the other 2x2 blocks
    with pytest.raises(ValueError, match="2 entries"):
        NetworkConfig(num_scales=3, channels=[8, 12, 16], fold_finest=True)


def test_folded_model_round_trips_and_fits(tmp_path, tiny_scene):
    cfg = tiny_cfg(40)
    target = make_target(tiny_scene, cfg, net_cfg=FAST)
    fitter = Fitter([target], cfg, tmp_path / "fit")
    first = fitter.evaluate()["psnr"]
    fitter.run(progress=False)
    assert fitter.history.psnr[-1] > first
    target.model.preview = RenderingNetwork(FAST)  # a preview network rides along
    target.model.save(tmp_path / "m")
    back = NeuralPointModel.load(tmp_path / "m")
    assert back.config == FAST and back.preview is not None
    with torch.no_grad():
        assert torch.allclose(target.model.eval()(cam := Camera.look_at(
            [0, 0, -4], [0, 0, 0], [0, -1, 0], 40, 32), preview=True), back(cam, preview=True),
            atol=1e-6)  # fmt: skip
    cam = Camera.look_at([0, 0, -4], [0, 0, 0], [0, -1, 0], 37, 29)
    with torch.no_grad():
        assert torch.allclose(target.model.eval()(cam), back(cam), atol=1e-6)


def test_model_renders_any_size_and_is_differentiable_in_descriptors():
    rng = np.random.default_rng(0)
    pts = rng.normal(size=(2000, 3)).astype(np.float32)
    model = NeuralPointModel.create(pts, rng.random((2000, 3)).astype(np.float32), SMALL)
    cam = Camera.look_at([0, 0, -4], [0, 0, 0], [0, -1, 0], 37, 29)  # not multiples of 4
    assert pad_camera(cam, 4).width == 40 and pad_camera(cam, 4).height == 32
    img = model(cam)
    assert img.shape == (3, 29, 37)
    img.mean().backward()
    g = model.descriptors.grad
    assert g is not None and (g.abs().sum(1) > 0).sum() > 100  # visible points get gradients


def test_save_load_round_trip(tmp_path):
    rng = np.random.default_rng(1)
    model = NeuralPointModel.create(rng.normal(size=(500, 3)), None, SMALL)
    with torch.no_grad():
        model.descriptors.add_(1.0)
    model.save(tmp_path / "m", {"note": "x"})
    back = NeuralPointModel.load(tmp_path / "m")
    cam = Camera.look_at([0, 0, -4], [0, 0, 0], [0, -1, 0], 32, 24)
    with torch.no_grad():
        assert torch.allclose(model(cam), back(cam))
    assert back.summary == {"note": "x"} and back.fit_focal is None
    model.fit_focal = 123.5
    model.save(tmp_path / "m")
    assert NeuralPointModel.load(tmp_path / "m").fit_focal == 123.5
    config = json.loads((tmp_path / "m" / "config.json").read_text())
    for nonsense in (
        "12",
        True,
        -3.0,
        0,
        None,
        [1],
        float("inf"),
    ):  # a hand-edited file: drawn as asked
        (tmp_path / "m" / "config.json").write_text(json.dumps(config | {"fit_focal": nonsense}))
        assert NeuralPointModel.load(tmp_path / "m").fit_focal is None, nonsense
    assert not list((tmp_path / "m").glob("*.tmp"))  # atomic writes leave no temp files


def test_loading_a_broken_model_is_a_clear_error(tmp_path):
    (tmp_path / "m").mkdir()
    (tmp_path / "m" / "config.json").write_text("{}")
    (tmp_path / "m" / "model.safetensors").write_bytes(b"\x00" * 20)
    with pytest.raises(NsvError, match="cannot read the fitted model"):
        NeuralPointModel.load(tmp_path / "m")


@pytest.fixture
def tiny_scene(tmp_path):
    root, _ = write_colmap_with_photos(tmp_path / "cap", n_views=9, n_points=2000)
    return load_scene(root)


def tiny_cfg(steps=30):
    # Constant learning rates, as tests/gui.py's fit_tiny: a few dozen steps get furthest
    # without the default decay (which pays over thousands of steps).
    return FitConfig(steps=steps, crop=48, max_side=96, eval_every=10, checkpoint_every=10,
                     holdout_every=4, lr_decay=False)  # fmt: skip


def test_fit_reduces_loss_and_reports_held_out_metrics(tmp_path, tiny_scene):
    cfg = tiny_cfg(60)
    target = make_target(tiny_scene, cfg, net_cfg=SMALL)
    fitter = Fitter([target], cfg, tmp_path / "fit")
    assert len(target.views.test) == 3 and len(target.views.train) == 6  # every 4th held out
    first = fitter.evaluate()["psnr"]
    fitter.run(progress=False)
    losses = fitter.history.loss
    assert np.mean(losses[-10:]) < np.mean(losses[:10])
    assert fitter.history.psnr[-1] > first
    out = fitter.export("scene")
    # It is drawn at the scale of the photos it was fitted to (NeuralPointModel.render).
    assert target.model.fit_focal == pytest.approx(
        np.median([v.camera.fx for v in target.views.train])
    )
    assert json.loads((out / "config.json").read_text())["fit_focal"] == target.model.fit_focal
    summary = json.loads((out / "config.json").read_text())["summary"]
    assert summary["steps"] == 60 and summary["held_out_psnr"] == fitter.history.psnr[-1]


def test_a_fit_that_projects_only_each_crops_rows_trains_as_one_that_projects_every_point(
    tmp_path, tiny_scene
):
    cfg = tiny_cfg(8)
    runs = []
    for cull in (True, False):
        torch.manual_seed(0)
        f = Fitter([make_target(tiny_scene, cfg, net_cfg=SMALL)], cfg, tmp_path / str(cull))
        if not cull:
            f._culls = None
        f.run(progress=False)
        runs.append(f)
    culled, whole = runs
    assert len(culled._culls) > 0  # crops were culled
    assert culled.history.loss == whole.history.loss
    assert torch.equal(culled.targets[0].model.descriptors, whole.targets[0].model.descriptors)


def test_evaluations_during_a_fit_take_no_part_in_its_training(tmp_path, tiny_scene):
    # They render held-out views with the network being trained (and its bf16 copies) and
    # draw nothing from the fit's random crops: a fit evaluated every 4 steps ends where one
    # evaluated only at its end does, to every bit.
    runs = []
    for every in (4, 0):
        cfg = dataclasses.replace(tiny_cfg(8), eval_every=every, lr_decay=True)
        torch.manual_seed(0)
        f = Fitter([make_target(tiny_scene, cfg, net_cfg=SMALL)], cfg, tmp_path / str(every))
        f.run(progress=False)
        runs.append(f)
    often, once = runs
    assert len(often.history.eval_step) > len(once.history.eval_step)
    assert often.history.loss == once.history.loss
    assert torch.equal(often.targets[0].model.descriptors, once.targets[0].model.descriptors)


def test_a_fits_time_reserve_counts_its_evaluations_fields_and_checkpoints(tmp_path, tiny_scene):
    cfg = tiny_cfg(40)  # an evaluation and a checkpoint every 10 steps, gain fields at the end
    f = Fitter([make_target(tiny_scene, cfg, net_cfg=SMALL)], cfg, tmp_path / "f")
    full = f.budget_reserve()
    f.step = 30  # one evaluation and one checkpoint left, and the fields
    late = f.budget_reserve()
    assert 0 < late < full < 60


def test_resume_continues_exactly(tmp_path, tiny_scene):
    cfg = tiny_cfg(20)
    torch.manual_seed(0)
    a = Fitter([make_target(tiny_scene, cfg, net_cfg=SMALL)], cfg, tmp_path / "a")
    a.run(progress=False)  # 20 straight steps

    torch.manual_seed(0)
    b = Fitter([make_target(tiny_scene, cfg, net_cfg=SMALL)], cfg, tmp_path / "b")
    b.run(10, progress=False)  # stop at 10 (checkpoint written) ...
    c = Fitter([make_target(tiny_scene, cfg, net_cfg=SMALL)], cfg, tmp_path / "b")
    assert c.load_checkpoint() and c.step == 10
    c.run(progress=False)  # ... and resume to 20 in a fresh process state
    assert c.step == 20
    assert np.allclose(a.history.loss, c.history.loss, rtol=1e-4, atol=1e-6)
    da, dc = a.targets[0].model.descriptors, c.targets[0].model.descriptors
    assert torch.allclose(da, dc, atol=1e-5)


def test_corrupt_checkpoint_is_reported(tmp_path, tiny_scene):
    cfg = tiny_cfg(10)
    f = Fitter([make_target(tiny_scene, cfg, net_cfg=SMALL)], cfg, tmp_path / "f")
    f.run(progress=False)
    ck = tmp_path / "f" / "checkpoint.safetensors"
    ck.write_bytes(ck.read_bytes()[:100])
    g = Fitter([make_target(tiny_scene, cfg, net_cfg=SMALL)], cfg, tmp_path / "f")
    with pytest.raises(NsvError, match="checkpoint"):
        g.load_checkpoint()


def test_neural_renderer_modes(tiny_scene):
    cfg = tiny_cfg()
    target = make_target(tiny_scene, cfg, net_cfg=SMALL)
    from engine.points.render import PointCloudRenderer, PointRenderOptions

    r = NeuralRenderer(target.model, PointCloudRenderer(tiny_scene, "cpu"), tiny_scene.views)
    cam = tiny_scene.views[0].camera
    neural = r.render(cam, NeuralRenderOptions("neural")).image
    desc = r.render(cam, NeuralRenderOptions("descriptors")).image
    assert neural.shape == desc.shape == (cam.height, cam.width, 3)
    assert not np.array_equal(neural, desc)
    cmp = r.render(cam, NeuralRenderOptions("compare", wipe=0.5, compare_with="splat"))
    splat = r.splat.render(cam, PointRenderOptions("color", 2)).image
    half = cam.width // 2
    # (the first frame starts ONNX Runtime's session in the background: later frames may come
    # from it, equal up to rounding)
    assert np.abs(cmp.image[:, : half - 1].astype(int) - neural[:, : half - 1]).max() <= 1
    assert np.array_equal(cmp.image[:, half + 1 :], splat[:, half + 1 :])
    photo = r.render(cam, NeuralRenderOptions("compare", wipe=0.0, compare_with="photo"))
    assert photo.compare_with == f"photo {tiny_scene.views[0].name}"
    import imageio.v3 as iio

    assert np.array_equal(photo.image[:, 2:], iio.imread(tiny_scene.views[0].image_path)[:, 2:])


def test_descriptor_gradient_matches_finite_differences():
    """d(loss)/d(descriptor) through rasterize -> gather -> network, checked numerically."""
    torch.manual_seed(0)
    rng = np.random.default_rng(3)
    pts = rng.normal(size=(60, 3)).astype(np.float32)
    cfg = NetworkConfig(descriptor_dim=4, num_scales=2, channels=[4, 6])
    model = NeuralPointModel.create(pts, None, cfg).double()
    cam = Camera.look_at([0, 0, -5], [0, 0, 0], [0, -1, 0], 16, 12, 40)
    target = torch.rand(3, 12, 16, dtype=torch.float64)

    def loss_fn():
        return ((model(cam) - target) ** 2).sum()

    loss_fn().backward()
    grad = model.descriptors.grad.clone()
    visible = torch.nonzero(grad.abs().sum(1) > 0).flatten()
    assert len(visible) >= 5
    eps = 1e-6
    for i in visible[:5].tolist():
        for c in range(4):
            with torch.no_grad():
                model.descriptors[i, c] += eps
                up = loss_fn().item()
                model.descriptors[i, c] -= 2 * eps
                down = loss_fn().item()
                model.descriptors[i, c] += eps
            numeric = (up - down) / (2 * eps)
            assert numeric == pytest.approx(grad[i, c].item(), rel=1e-4, abs=1e-8)


def test_mismatched_checkpoints_are_rejected_before_loading(tmp_path, tiny_scene):
    cfg = tiny_cfg(10)
    f = Fitter([make_target(tiny_scene, cfg, net_cfg=SMALL)], cfg, tmp_path / "f")
    f.run(progress=False)
    # Another network configuration: rejected, and nothing of it is loaded.
    other = NetworkConfig(descriptor_dim=8, num_scales=3, channels=[8, 12, 24])
    g = Fitter([make_target(tiny_scene, cfg, net_cfg=other)], cfg, tmp_path / "f")
    before = {k: v.clone() for k, v in g.net.state_dict().items()}
    with pytest.raises(NsvError, match="network does not match"):
        g.load_checkpoint()
    assert all(torch.equal(before[k], v) for k, v in g.net.state_dict().items())
    assert g.step == 0
    # Another point cloud (different point count): rejected.
    import dataclasses

    smaller = dataclasses.replace(
        tiny_scene, points=tiny_scene.points[:1500], colors=tiny_scene.colors[:1500]
    )
    h = Fitter(
        [make_target(smaller, cfg, net_cfg=SMALL, name=f.targets[0].name)], cfg, tmp_path / "f"
    )
    with pytest.raises(NsvError, match="descriptors"):
        h.load_checkpoint()


def test_fitting_a_scene_without_photos_is_a_clear_error(tmp_path):
    from tests.helpers import write_cloud

    scene = load_scene(write_cloud(tmp_path / "c.ply", 500))
    with pytest.raises(NsvError, match="needs photos with cameras"):
        make_target(scene, tiny_cfg())


def test_per_photo_exposure_and_white_balance_are_recovered(tmp_path):
    """Photos re-exposed with known per-photo gains: the fit learns those gains (up to the
    common factor the scene absorbs), and a held-out photo's gains come from its neighbours."""
    import imageio.v3 as iio

    from engine.npbg.photometric import apply_gains, camera_centre

    root, _ = write_colmap_with_photos(tmp_path / "cap", n_views=9, n_points=2000)
    rng = np.random.default_rng(3)
    truth = {}
    for i in range(9):
        g = torch.tensor(rng.uniform(-0.35, 0.35, 3), dtype=torch.float32)
        path = root / "images" / f"view_{i}.png"
        img = torch.from_numpy(iio.imread(path)[..., :3]).permute(2, 0, 1).float() / 255
        iio.imwrite(path, (apply_gains(img, g).permute(1, 2, 0) * 255 + 0.5).byte().numpy())
        truth[f"view_{i}.png"] = g
    scene = load_scene(root)
    cfg = tiny_cfg(300)
    cfg.lr_photometric = 0.03
    cfg.environment = False  # the grey background would otherwise also fit per direction
    target = make_target(scene, cfg, net_cfg=SMALL)
    Fitter([target], cfg, tmp_path / "fit").run(progress=False)
    cal = target.calibration
    names = cal.names
    true = torch.stack([truth[n] for n in names])
    true = true - true.mean(0)
    learned = cal.gains().detach()
    # Recovered up to what the descriptors of points seen by few photos absorb: clearly
    # correlated with the truth (an unlearned or shuffled correction gives ~0) and not shrunk.
    corr = torch.corrcoef(torch.stack([learned.flatten(), true.flatten()]))[0, 1]
    assert corr > 0.7 and learned.std() > 0.5 * true.std(), (learned, true)
    # A held-out photo is never fitted: its gains are its two nearest training photos' mean.
    held = target.views.test[0]
    assert held.name not in cal.index
    d = (cal.centres - camera_centre(held.camera)).norm(dim=1)
    assert torch.allclose(cal.predict(held.camera), learned[d.argsort()[:2]].mean(0))
    # Saved with the model and used by `nsv eval`.
    out = tmp_path / "fit"
    Fitter([target], cfg, out).export("scene")
    back = NeuralPointModel.load(out)
    assert back.calibration is not None and torch.allclose(
        back.calibration.gains(), learned, atol=1e-6
    )


def test_fit_without_photometric_has_no_calibration(tmp_path, tiny_scene):
    cfg = tiny_cfg(5)
    cfg.photometric = False
    target = make_target(tiny_scene, cfg, net_cfg=SMALL)
    f = Fitter([target], cfg, tmp_path / "f")
    f.run(progress=False)
    f.export("scene")
    assert target.calibration is None and NeuralPointModel.load(tmp_path / "f").calibration is None


def test_environment_map_fills_pixels_without_points(tmp_path):
    from engine.npbg.model import ray_directions, sample_environment
    from engine.points.rasterize import rasterize_points

    cam = Camera.look_at([0, 0, -3], [0, 0, 0], [0, -1, 0], 32, 24, 60)
    dirs = ray_directions(cam, 24, 32, 0)
    assert torch.allclose(dirs[:, 12, 16], torch.tensor([0.0, 0.0, 1.0]), atol=0.05)  # forward
    assert torch.allclose(dirs.norm(dim=0), torch.ones(24, 32), atol=1e-5)
    env = torch.zeros(2, 16, 32)
    env[0, :, 15:17] = 1.0  # longitude 0 (looking down +z), channel 0
    look = sample_environment(env, dirs)
    assert look[0, 12, 16] > 0.5 and look[0, 12, 0] < 0.2 and look[1].abs().max() == 0
    # The renderer looks directions up for the pixels without points alone: the same values.
    some = torch.tensor([0, 5, 16 + 12 * 32, 24 * 32 - 1])
    assert torch.allclose(ray_directions(cam, 24, 32, 0, pixels=some),
                          dirs.reshape(3, -1)[:, some], atol=1e-6)  # fmt: skip
    assert torch.allclose(sample_environment(env, dirs.reshape(3, -1)[:, some]),
                          look.reshape(2, -1)[:, some], atol=1e-6)  # fmt: skip
    # A model with an environment: empty pixels take it (and its gradient), points do not.
    model = NeuralPointModel.create(np.zeros((1, 3), np.float32), None, SMALL, environment=True)
    with torch.no_grad():
        model.environment.fill_(0.5)
    feats = model.rasterize(cam.resized(32, 24))
    assert torch.allclose(feats[0][0, :, 0, 0], torch.full((8,), 0.5))
    centre = rasterize_points(model.points, cam.resized(32, 24))[0].index[12, 16]
    assert centre == 0 and torch.equal(feats[0][0, :, 12, 16], model.descriptors[0].detach())
    model(cam).mean().backward()
    assert model.environment.grad is not None and model.environment.grad.abs().sum() > 0
    model.save(tmp_path / "m")
    back = NeuralPointModel.load(tmp_path / "m")
    assert back.environment is not None and torch.allclose(back.environment, model.environment)


def test_onnx_sessions_built_on_several_threads_at_once():
    """The viewer builds the full and preview networks' sessions on their own threads: the
    exporter's global state must not be shared between them (CI crashed when it was)."""
    import threading

    from engine.npbg import ort

    if not ort.available():
        pytest.skip("onnxruntime / onnx not installed")
    torch.manual_seed(0)
    nets = [RenderingNetwork(SMALL) for _ in range(3)]
    sessions: dict[int, object] = {}
    errors: list[BaseException] = []

    def build(i: int) -> None:
        try:
            sessions[i] = ort.build_session(nets[i], threads=1)
        except BaseException as e:  # reported by the assertion below
            errors.append(e)

    threads = [threading.Thread(target=build, args=(i,)) for i in range(len(nets))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors and len(sessions) == len(nets)
    levels = [torch.rand(1, 8, 16 >> s, 16 >> s) for s in range(SMALL.num_scales)]
    with torch.no_grad():
        for i, net in enumerate(nets):
            assert torch.allclose(ort.run_session(sessions[i], levels), net(levels), atol=1e-5)


def test_onnx_runtime_draws_the_same_image_and_follows_weight_changes(tiny_scene, monkeypatch):
    from engine.npbg import ort

    monkeypatch.setenv("NSV_CPU_BF16", "0")  # a CPU without native bf16 views through ORT
    if not ort.available():
        pytest.skip("onnxruntime / onnx not installed")
    target = make_target(tiny_scene, tiny_cfg(), net_cfg=SMALL)
    model = target.model
    cam = tiny_scene.views[0].camera
    session = ort.build_session(model.net)
    levels = model.rasterize(pad_camera(cam, 2 ** (SMALL.num_scales - 1)))
    with torch.no_grad():
        assert torch.allclose(ort.run_session(session, levels), model.net(levels), atol=1e-5)
    r = NeuralRenderer(model)  # starts building the session in the background
    r.ort.wait()
    first = r.render(cam)
    r.ort.enabled = False
    slow = r.render(cam)
    assert slow.runtime == "torch"
    r.ort.enabled = True
    assert first.runtime == "onnxruntime"
    assert np.abs(slow.image.astype(int) - first.image).max() <= 1
    r.ort.stable_s = 0.3
    for _ in range(3):  # a fit changing the weights every frame: PyTorch, no session built
        with torch.no_grad():
            model.net.head.bias.add_(0.2)
        changed = r.render(cam)
        assert changed.runtime == "torch" and not r.ort._building
    assert changed.image.mean() > first.image.mean()
    time.sleep(0.4)  # the weights have settled: a session for them is built
    assert r.render(cam).runtime == "torch"
    r.ort.wait()
    again = r.render(cam)
    assert again.runtime == "onnxruntime"
    assert np.abs(again.image.astype(int) - changed.image).max() <= 1


def test_preview_distillation_never_trains_at_held_out_cameras(tmp_path, tiny_scene):
    """The preview network is judged on the fit's held-out photos: their cameras are not among
    its training views (not even to copy the full network there), and continuing a model's
    own preview network starts from its weights."""
    from dataclasses import asdict

    from engine.npbg.distill import CONTINUE, DistillConfig, preview_distiller

    cfg = tiny_cfg()
    model = make_target(tiny_scene, cfg, net_cfg=SMALL).model
    model.summary = {"config": asdict(cfg)}
    fast = NetworkConfig(descriptor_dim=8, num_scales=3, channels=[8, 12], convs=1,
                         fold_finest=True)  # fmt: skip
    model.preview = RenderingNetwork(fast)
    job = preview_distiller(model, tiny_scene, tmp_path / "m", DistillConfig(steps=1), CONTINUE)
    held = {v.name for v in ViewSet(tiny_scene, cfg.max_side, cfg.holdout_every).test}
    assert held and not held & {v.name for v in job.views.train}
    for k, v in model.preview.state_dict().items():
        assert torch.equal(job.student.state_dict()[k], v)


def test_bf16_viewing_draws_the_fp32_picture(tiny_scene, monkeypatch):
    """Where the CPU has native bf16 the viewer runs the networks in it: the same image as
    fp32 to within rounding of a few levels, and the frame says so."""
    from engine.device import cpu_bf16

    if not cpu_bf16():
        pytest.skip("this CPU has no native bfloat16")
    target = make_target(tiny_scene, tiny_cfg(), net_cfg=SMALL)
    cam = tiny_scene.views[0].camera
    fast = NeuralRenderer(target.model).render(cam)
    monkeypatch.setenv("NSV_CPU_BF16", "0")
    exact = NeuralRenderer(target.model)
    exact.ort.enabled = False
    ref = exact.render(cam)
    assert fast.runtime == "torch bf16" and ref.runtime == "torch"
    diff = np.abs(fast.image.astype(int) - ref.image)
    assert diff.mean() < 1.0 and diff.max() <= 12, (diff.mean(), diff.max())


def test_export_writes_splats_that_look_like_the_fitted_scene(tmp_path):
    """`nsv export` turns a fitted scene into a 3DGS PLY: it opens as Gaussians, and drawn as
    splats at a capture camera it shows what the fitted model renders there."""
    from engine.glcontext import create_headless_context
    from tests.gui import fit_tiny
    from tests.helpers import assert_one_line_error, nsv
    from viewer.gl.gaussians import GaussiansGL

    root, cams = write_colmap_with_photos(tmp_path / "cap", n_points=3000)
    fit_tiny(root, steps=150)
    out = tmp_path / "splats.ply"
    res = nsv("export", str(root), "--out", str(out))
    assert res.returncode == 0, res.stderr[-2000:]
    scene = load_scene(out)
    g = scene.gaussians
    assert g is not None and 2000 < g.count <= 3000 and g.degree == 0
    cam = cams[0].resized(160, 120)
    neural = NeuralRenderer(NeuralPointModel.load(root / "npbg")).render(cam).image
    try:
        ctx = create_headless_context()
    except Exception as e:  # pragma: no cover - machines without EGL/GL
        pytest.skip(f"no headless OpenGL: {e}")
    drawer = GaussiansGL(ctx)
    drawer.set_scene(scene)
    splats = drawer.render(cam)
    drawer.release()
    # Inside the splats' silhouette (around it the fitted model paints its environment map,
    # which splats do not carry, and the splats' soft edges let the black background through).
    from scipy.ndimage import binary_erosion

    covered = binary_erosion(splats.sum(-1) > 0, iterations=4)
    assert covered.mean() > 0.05
    err = (splats[covered].astype(float) - neural[covered]) / 255
    assert 10 * np.log10(1 / np.mean(err**2)) > 16.0  # the tiny fit's render is soft
    assert np.abs(err.mean(0)).max() < 0.04  # the same colours on average
    bad = nsv("export", str(root), "--out", str(tmp_path / "x.txt"))
    assert_one_line_error(bad, "--out", ".ply")


def test_the_trainer_registry_fits_a_scene_and_distils_its_preview(tmp_path):
    """The Train panel's short form: the registry builds the scene fit from a scene folder (it
    starts from the pretrained network), ``finish`` evaluates and exports it, and the preview
    network is distilled from the exported model."""
    from engine.trainers import TRAINERS

    root, _ = write_colmap_with_photos(tmp_path / "cap", n_views=9, n_points=2000)
    assert TRAINERS["npbg"].on_scene and TRAINERS["npbg-preview"].on_scene
    fit = TRAINERS["npbg"].build(root, tmp_path / "m", 4, "cpu")
    fit.run(progress=False)
    res = fit.finish(str(root))
    assert fit.step == 4 and res["views"] > 0 and np.isfinite(res["psnr"])
    assert (tmp_path / "m" / "model.safetensors").is_file()
    preview = TRAINERS["npbg-preview"].build(root, tmp_path / "m", 2, "cpu")
    preview.run(progress=False)
    assert preview.step == 2
    assert NeuralPointModel.load(tmp_path / "m").preview is not None


def test_each_trainer_starts_at_its_train_commands_default_steps():
    # The panel's Steps box follows the Model list; each entry's count is its config's default
    # (the registry declares it as a literal to stay importable without PyTorch).
    from engine.denoise.train import TrainConfig
    from engine.latent.rendernet import RenderNetTrainConfig
    from engine.latent.train import HoloGANTrainConfig
    from engine.npbg.distill import DistillConfig
    from engine.npbg.fit import FitConfig
    from engine.trainers import TRAINERS

    configs = {"npbg": FitConfig, "npbg-preview": DistillConfig, "denoiser": TrainConfig,
               "hologan": HoloGANTrainConfig, "rendernet": RenderNetTrainConfig}  # fmt: skip
    assert set(configs) == set(TRAINERS)
    for key, cfg in configs.items():
        assert TRAINERS[key].steps == cfg().steps, key


def test_distillation_orbits_keep_the_pivot_in_place():
    # The preview network's orbit views: the point the photos look at stays at its pixel, its
    # depth scales with the dolly, and the camera really moved.
    from engine.camera import Camera
    from engine.npbg.distill import orbit_camera

    cam = Camera.look_at([0.3, -0.5, -4.0], [0.1, 0.2, 0.0], [0, -1, 0], 96, 64)
    pivot = np.array([0.1, 0.2, 0.0])
    uv0, z0 = cam.project(pivot[None])
    moved = orbit_camera(cam, pivot, np.array([0.0, -1.0, 0.0]), 0.5, -0.2, 1.3)
    uv1, z1 = moved.project(pivot[None])
    assert np.allclose(uv0, uv1, atol=1e-6) and z1[0] == pytest.approx(1.3 * z0[0])
    assert np.linalg.norm(moved.position - cam.position) > 1.0
    assert np.allclose(moved.R @ moved.R.T, np.eye(3), atol=1e-9)


def test_gated_convolution_views_and_copies_agree():
    # Viewing copies the gate's halves out of the channels_last output (fast ELU / sigmoid):
    # the very same values as the strided views training uses.
    import engine.npbg.network as network

    conv = network.GatedConv(8, 6)
    x = torch.randn(1, 8, 20, 24).contiguous(memory_format=torch.channels_last)
    with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16):
        fast = conv(x)
        network.CONTIGUOUS_HALVES = False
        try:
            plain = conv(x)
        finally:
            network.CONTIGUOUS_HALVES = True
    assert torch.equal(fast, plain)


def test_bf16_viewing_copy_matches_autocast_and_follows_weight_changes():
    # The viewer runs a bf16 copy of the network instead of autocast; it must draw what the
    # network draws and pick up new weights (a fit's optimizer step, a load_state_dict).
    from engine.npbg.network import Bf16Networks, bf16_runner

    torch.manual_seed(0)
    net = RenderingNetwork(SMALL).eval()
    xs = [torch.rand(1, 8, 32 >> s, 48 >> s) for s in range(3)]
    nets = Bf16Networks()
    with torch.no_grad():
        ref = bf16_runner(net, xs)
        assert (nets.run(net, xs) - ref).abs().max() < 0.02
        first = nets.run(net, xs)
    opt = torch.optim.SGD(net.parameters(), lr=0.5)
    net(xs).mean().backward()
    opt.step()
    with torch.no_grad():
        moved = nets.run(net, xs)
        assert (moved - first).abs().max() > 0.01  # the step changed the picture
        assert (moved - bf16_runner(net, xs)).abs().max() < 0.02
        other = RenderingNetwork(SMALL)
        net.load_state_dict(other.state_dict())
        assert (nets.run(net, xs) - bf16_runner(other, xs)).abs().max() < 0.02


def test_rasterize_gathers_from_a_given_descriptor_table():
    # The viewer gathers from a bfloat16 copy of the descriptors: the same levels as gathering
    # the model's own and rounding them (what the network's first convolution does).
    cam = Camera.look_at([0, 0, -3], [0, 0, 0], [0, -1, 0], 32, 24, 60)
    pts = np.random.default_rng(0).uniform(-1, 1, (400, 3)).astype(np.float32)
    model = NeuralPointModel.create(pts, None, SMALL, environment=True)
    with torch.no_grad():
        model.environment.normal_()
        own = model.rasterize(cam)
        half = model.rasterize(cam, model.descriptors.to(torch.bfloat16))
    for a, b in zip(own, half, strict=True):
        assert b.dtype == torch.bfloat16 and torch.equal(a.to(torch.bfloat16), b)


def test_environment_sphere_moves_with_the_camera_like_far_walls(tmp_path):
    from engine.npbg.model import environment_sphere, sphere_directions

    dirs = torch.nn.functional.normalize(torch.randn(3, 50), dim=0)
    centre = torch.tensor([1.0, 2.0, 3.0])
    # From the centre the sphere is the plain map; from elsewhere the ray's exit point.
    assert torch.allclose(sphere_directions(dirs, centre.numpy(), centre, 10.0), dirs, atol=1e-6)
    origin = np.array([3.0, 2.0, 1.0])
    out = sphere_directions(dirs, origin, centre, 10.0)
    hits = centre[:, None] + 10.0 * out
    along = hits - torch.as_tensor(origin, dtype=torch.float32)[:, None]
    assert torch.allclose(torch.nn.functional.normalize(along, dim=0), dirs, atol=1e-5)
    # A wall point 10 units from the centre looks up the same map texel from two cameras.
    wall = torch.tensor([11.0, 2.0, 3.0])
    for eye in (np.array([1.0, 2.0, 3.0]), np.array([1.0, 4.0, 1.0])):
        d = torch.nn.functional.normalize(wall - torch.as_tensor(eye, dtype=torch.float32), dim=0)
        assert torch.allclose(sphere_directions(d[:, None], eye, centre, 10.0)[:, 0],
                              torch.tensor([1.0, 0.0, 0.0]), atol=1e-5)  # fmt: skip

    # The sphere of a capture: the cameras' centre, the far points' median distance.
    rng = np.random.default_rng(0)
    cams = rng.normal(size=(20, 3)) * 0.5 + [5, 0, 0]
    near = rng.normal(size=(1000, 3)) * 0.3 + [5, 0, 0]
    far = torch.nn.functional.normalize(torch.randn(500, 3), dim=1).numpy() * 8 + [5, 0, 0]
    c, r = environment_sphere(np.concatenate([near, far]), cams)
    assert np.allclose(c, np.median(cams, 0), atol=1e-5) and abs(r - 8) < 0.5
    assert environment_sphere(near, cams)[1] == 0.0  # nothing far: the map stays at infinity

    # Saved and loaded with the model; a damaged value is one plain line.
    model = NeuralPointModel.create(near.astype(np.float32), None, SMALL, environment=True,
                                    env_sphere=(c, r))  # fmt: skip
    model.save(tmp_path / "m")
    back = NeuralPointModel.load(tmp_path / "m")
    assert back.env_radius == pytest.approx(r) and np.allclose(back.env_center.numpy(), c)
    cfg = json.loads((tmp_path / "m" / "config.json").read_text())
    cfg["environment_sphere"]["radius"] = "far"
    (tmp_path / "m" / "config.json").write_text(json.dumps(cfg))
    with pytest.raises(NsvError, match="environment_sphere"):
        NeuralPointModel.load(tmp_path / "m")


def test_a_renderer_draws_a_fit_as_it_stands(tmp_path, tiny_scene):
    # The viewer draws a model while a fit trains it; its bf16 copies of the network and the
    # descriptors must follow every optimizer step (a fused Adam did not bump the version
    # counters they watch, and the live preview froze at its first frame).
    cfg = tiny_cfg(20)
    cfg.lr_network = 0.05
    target = make_target(tiny_scene, cfg, net_cfg=SMALL)
    fitter = Fitter([target], cfg, tmp_path / "fit")
    renderer = NeuralRenderer(target.model)
    cam = target.views.train[0].camera
    before = renderer.render(cam, NeuralRenderOptions("neural")).image.astype(int)
    for _ in range(10):
        fitter.train_step()
    after = renderer.render(cam, NeuralRenderOptions("neural")).image.astype(int)
    with torch.no_grad():
        fresh = (target.model(cam).permute(1, 2, 0).clamp(0, 1) * 255).round().numpy()
    assert np.abs(after - before).max() > 8  # the picture moved with the fit
    assert np.abs(after - fresh).mean() < 3  # ... to what the model now draws


def test_environment_shape_follows_a_box_rooms_walls(tmp_path):
    """A room is not a sphere: the map's distance per direction comes from the far points, and
    a ray from off the centre finds the wall point it points at."""
    from engine.npbg.model import (
        environment_radii,
        environment_sphere,
        ray_directions,
        sphere_directions,
        surface_radius,
    )

    rng = np.random.default_rng(0)
    half = np.array([20.0, 8.0, 12.0])  # a box room's half sizes about the origin
    walls = []
    for axis in range(3):
        for sign in (-1, 1):
            p = rng.uniform(-1, 1, (4000, 3)) * half
            p[:, axis] = sign * half[axis]
            walls.append(p)
    cams = np.stack([[2 * np.cos(a), 0.0, 2 * np.sin(a)] for a in np.linspace(0, 6, 12)])
    pts = np.concatenate([*walls, rng.normal(size=(2000, 3)) * 0.5])  # an object in the middle
    c, r = environment_sphere(pts, cams)
    radii = environment_radii(pts, c, r, cams, 32)
    assert radii.shape == (32, 64)
    t_radii = torch.from_numpy(radii)
    c_t = torch.as_tensor(c)
    for axis in range(3):
        for sign in (-1, 1):
            d = np.zeros(3)
            d[axis] = sign
            got = float(sample_environment(t_radii[None], torch.tensor(d).float()[:, None])[0, 0])
            want = half[axis] - sign * c[axis]
            assert abs(got - want) < 0.15 * want, (axis, sign, got, want)  # a sphere: 8 vs 20
    # From a camera off the centre, the ray towards a wall point finds that point's direction.
    eye = np.array([2.0, 0.5, -1.0])
    for wall_pt in (np.array([20.0, 3.0, 4.0]), np.array([-5.0, -8.0, 2.0])):
        d = torch.nn.functional.normalize(torch.tensor(wall_pt - eye).float(), dim=0)[:, None]
        got = sphere_directions(d, eye, torch.as_tensor(c), surface_radius(d, eye, c_t, r, t_radii))
        got = got[:, 0]
        want = torch.nn.functional.normalize(torch.tensor(wall_pt - c).float(), dim=0)
        assert float(torch.dot(got, want)) > np.cos(np.radians(3)), (got, want)
    # Saved and loaded with the model; a damaged map is one plain line.
    model = NeuralPointModel.create(pts.astype(np.float32), None, SMALL, environment=True,
                                    env_sphere=(c, r), env_radii=radii)  # fmt: skip
    # The renderer looks the map up where each empty pixel's ray meets the walls: with a map
    # holding its own texels' directions, the looked-up values are those directions.
    rows = torch.arange(32) + 0.5
    cols = torch.arange(64) + 0.5
    lat = (rows / 32 * 2 - 1) * np.pi / 2
    lon = (cols / 64 * 2 - 1) * np.pi
    model.environment.data = torch.zeros(SMALL.descriptor_dim, 32, 64)
    model.environment.data[0] = lat.cos()[:, None] * lon.sin()[None]
    model.environment.data[1] = lat.sin()[:, None].expand(32, 64)
    model.environment.data[2] = lat.cos()[:, None] * lon.cos()[None]
    eye = np.array([10.0, 3.0, -7.0])  # far off the centre: walls and sphere part ways
    cam = Camera.look_at(eye, [20.0, 4.0, 3.0], [0, -1, 0], 64, 48, fov_y_deg=70.0)
    model.points = torch.zeros(1, 3)  # nothing but the environment in view
    with torch.no_grad():
        img = model.rasterize(cam)[0][0, :3].reshape(3, -1)
    rays = ray_directions(cam, 48, 64, 0).reshape(3, -1)
    want = sphere_directions(rays, eye, c_t, surface_radius(rays, eye, c_t, r, t_radii))
    got = torch.nn.functional.normalize(img, dim=0)

    def degrees(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        return torch.rad2deg(torch.acos((a * b).sum(0).clamp(-1, 1)))

    off = degrees(got, want)  # the radius comes from a 1/4-resolution grid: off at the corners
    assert off.median() < 1 and off.quantile(0.9) < 3  # (measured 0.24, 1.8; a texel is 5.6)
    assert degrees(sphere_directions(rays, eye, c_t, r), want).median() > 2  # a sphere: 3.0
    model.save(tmp_path / "m")
    assert torch.equal(NeuralPointModel.load(tmp_path / "m").env_radii, t_radii)
    from safetensors.torch import load_file, save_file

    tensors = load_file(str(tmp_path / "m" / "model.safetensors"))
    tensors["environment_radii"] = -tensors["environment_radii"]
    save_file(tensors, str(tmp_path / "m" / "model.safetensors"))
    with pytest.raises(NsvError, match="environment_radii"):
        NeuralPointModel.load(tmp_path / "m")


@pytest.mark.parametrize("fold", [False, True])
def test_a_network_widened_for_more_descriptor_channels_renders_as_before(fold):
    from engine.npbg.network import NetworkConfig, RenderingNetwork, widen_descriptors

    torch.manual_seed(0)
    cfg = NetworkConfig(descriptor_dim=4, num_scales=3, channels=[6, 8] if fold else [4, 6, 8],
                        fold_finest=fold, pixel_head=5 if fold else 0)  # fmt: skip
    net = RenderingNetwork(cfg).eval()
    wide = widen_descriptors(net, 7).eval()
    assert wide.cfg.descriptor_dim == 7
    levels = [torch.rand(1, 4, 16 >> s, 16 >> s) for s in range(3)]
    extra = [torch.rand(1, 3, *x.shape[-2:]) for x in levels]
    with torch.no_grad():
        before = net(levels)
        after = wide([torch.cat([x, e], 1) for x, e in zip(levels, extra, strict=True)])
    assert torch.allclose(before, after, atol=1e-6)
    # ... and the new channels are trainable: they get gradients.
    out = wide([torch.cat([x, e], 1) for x, e in zip(levels, extra, strict=True)])
    out.mean().backward()
    assert wide.enc[0][0].conv.weight.grad.abs().sum() > 0
    with pytest.raises(ValueError, match="narrow"):
        widen_descriptors(net, 2)


def test_a_fit_with_wider_descriptors_distills_from_the_narrower_pretrained_network(
    tmp_path, tiny_scene
):
    """`nsv fit --descriptor-dim 12` then `nsv distill`: the pretrained fast network (made for
    fewer channels) is widened to read them, its picture unchanged at the start."""
    from dataclasses import asdict

    from safetensors.torch import save_file

    from engine.npbg.distill import DistillConfig, preview_distiller

    cfg = tiny_cfg()
    wide = NetworkConfig(descriptor_dim=12, num_scales=3, channels=[8, 12, 16])
    model = make_target(tiny_scene, cfg, net_cfg=wide).model
    model.summary = {"config": asdict(cfg)}
    fast = NetworkConfig(descriptor_dim=8, num_scales=3, channels=[8, 12], convs=1,
                         fold_finest=True)  # fmt: skip
    net = tmp_path / "fast"
    net.mkdir()
    pretrained = RenderingNetwork(fast)
    save_file({f"net.{k}": v for k, v in pretrained.state_dict().items()},
              str(net / "network.safetensors"))  # fmt: skip
    (net / "network.json").write_text(json.dumps({"network": asdict(fast)}))
    job = preview_distiller(model, tiny_scene, tmp_path / "m", DistillConfig(steps=1), net)
    assert job.student.cfg.descriptor_dim == 12
    with torch.no_grad():
        levels = [x[:, :8] for x in model.rasterize(pad_camera(tiny_scene.views[0].camera, 4))]
    with torch.no_grad():
        a = pretrained.eval()(levels)
        b = job.student.eval()([torch.cat([x, torch.rand_like(x)[:, :4]], 1) for x in levels])
    assert torch.allclose(a, b, atol=1e-6)


def test_a_crop_samples_the_gain_field_where_it_lies_in_the_photo():
    """A training crop (the photo rescaled, then cropped, as ViewSet.sample makes it) reads the
    photo's field where its pixels lie in the photo; a held-out photo reads its own frame."""
    from engine.npbg.photometric import _intrinsics, frame_grid

    photo = Camera(160, 120, 150.0, 140.0, 81.0, 59.0, np.eye(4))
    full = frame_grid(photo)
    assert full.shape == (1, 120, 160, 2)
    assert torch.allclose(full[0, 0, 0], torch.tensor([0.5 / 160 * 2 - 1, 0.5 / 120 * 2 - 1]))
    assert torch.allclose(full[0, -1, -1], torch.tensor([1 - 0.5 / 160 * 2, 1 - 0.5 / 120 * 2]))
    scaled = photo.scaled(2.0)
    x0, y0 = 40, 30
    crop = Camera(64, 48, scaled.fx, scaled.fy, scaled.cx - x0, scaled.cy - y0, np.eye(4))
    g = frame_grid(crop, _intrinsics(photo))
    assert g.shape == (1, 48, 64, 2)
    for x, y in [(0, 0), (10, 3), (63, 47)]:
        # crop pixel (x, y) is pixel (x0 + x, y0 + y) of the photo at twice its size
        u, v = (x0 + x + 0.5) / 2, (y0 + y + 0.5) / 2
        assert torch.allclose(g[0, y, x], torch.tensor([u / 160 * 2 - 1, v / 120 * 2 - 1]))


def test_a_gain_field_across_each_photo_is_measured_and_predicted_for_held_out_photos(tmp_path):
    """Photos darkened towards their corners (vignetting) and brightened towards one side by a
    slope that changes smoothly around the ring (a phone's local tone mapping): the fit measures
    each training photo's field, with those slopes, and a held-out photo's prediction from its
    neighbours brings the rendering closer to it than the gains alone."""
    import imageio.v3 as iio

    from engine.npbg.evaluate import evaluate_model
    from engine.npbg.photometric import apply_gains

    n = 12
    root, _ = write_colmap_with_photos(tmp_path / "cap", n_views=n, n_points=2000)
    yy, xx = torch.meshgrid(torch.linspace(-1, 1, 120), torch.linspace(-1, 1, 160), indexing="ij")
    slopes = {}
    for i in range(n):
        path = root / "images" / f"view_{i}.png"
        img = torch.from_numpy(iio.imread(path)[..., :3]).permute(2, 0, 1).float() / 255
        slope = 0.5 * float(np.cos(2 * np.pi * i / n))
        field = (slope * xx - 0.3 * (xx**2 + yy**2)).expand(3, -1, -1)
        photo = apply_gains(img, torch.zeros(3), field)
        iio.imwrite(path, (photo.permute(1, 2, 0) * 255 + 0.5).byte().numpy())
        slopes[f"view_{i}.png"] = slope
    scene = load_scene(root)
    cfg = tiny_cfg(300)
    cfg.lr_photometric = 0.03
    cfg.environment = False
    cfg.photo_field = 4
    target = make_target(scene, cfg, net_cfg=SMALL)
    fitter = Fitter([target], cfg, tmp_path / "fit")
    fitter.run(progress=False)
    fitter.export("scene")
    cal = target.calibration
    f = cal.field.mean(1)  # (V, rows, rows)
    learned = (f[:, :, -1] - f[:, :, 0]).mean(1)  # right minus left
    true = torch.tensor([slopes[nm] for nm in cal.names])
    corr = torch.corrcoef(torch.stack([learned, true]))[0, 1]
    assert corr > 0.8, (learned, true)
    # Saved with the model; `nsv eval` predicts the held-out photos' fields from neighbours.
    model = NeuralPointModel.load(tmp_path / "fit")
    with_fields = evaluate_model(scene, model, 96, 4)["neural"]["psnr"]
    model.calibration.field.zero_()
    gains_only = evaluate_model(scene, model, 96, 4)["neural"]["psnr"]
    assert with_fields > gains_only + 0.5, (with_fields, gains_only)


def test_a_view_is_drawn_at_the_scale_the_model_was_fitted_at_and_resampled():
    rng = np.random.default_rng(0)
    pts = rng.normal(size=(3000, 3)).astype(np.float32)
    model = NeuralPointModel.create(pts, rng.random((3000, 3)).astype(np.float32), SMALL).eval()
    cam = Camera.look_at([0, 0, -4], [0, 0, 0], [0, -1, 0], 64, 48)
    drawn = []  # the size of each image the network draws
    model.net.register_forward_pre_hook(lambda m, a: drawn.append(tuple(a[0][0].shape[-2:])))
    with torch.no_grad():
        assert torch.equal(model.render(cam.scaled(2.0)), model(cam.scaled(2.0)))  # unknown
        model.fit_focal = cam.fx
        assert torch.equal(model.render(cam.resized(66, 50)), model(cam.resized(66, 50)))
        drawn.clear()
        finer = model.render(cam.scaled(2.0))
        assert finer.shape == (3, 96, 128) and drawn == [(48, 64)]
        assert torch.allclose(finer, resample_image(model(cam), 128, 96))
        drawn.clear()
        coarser = model.render(cam.scaled(0.25))  # 16 x 12: drawn at most twice as fine
        assert coarser.shape == (3, 12, 16) and drawn == [(24, 32)]
        drawn.clear()
        model.render(cam.scaled(0.25), supersample=1.0)  # a viewer: never more pixels
        assert drawn == [(12, 16)]


def test_a_view_finer_than_the_fit_is_closer_to_the_photo_drawn_at_the_fits_scale(tmp_path):
    scene = load_scene(write_colmap_with_photos(tmp_path / "cap", n_views=9, n_points=2000)[0])
    cfg = dataclasses.replace(tiny_cfg(150), max_side=80)  # the photos are 160 x 120
    torch.manual_seed(0)
    target = make_target(scene, cfg, net_cfg=SMALL)
    Fitter([target], cfg, tmp_path / "fit").run(progress=False)
    views = ViewSet(scene, 160, cfg.holdout_every).test
    with torch.no_grad():
        asked = np.mean([psnr(target.model(v.camera).clamp(0, 1), v.image) for v in views])
        fitted = np.mean([psnr(target.model.render(v.camera), v.image) for v in views])
    assert fitted > asked + 0.3  # measured 20.44 against 19.40 dB


def test_a_model_fitted_before_it_recorded_its_scale_gets_its_photos(tmp_path, tiny_scene):
    model = make_target(tiny_scene, tiny_cfg(), net_cfg=SMALL).model
    model.save(tmp_path / "m", {"config": {"max_side": 96}})
    old = json.loads((tmp_path / "m" / "config.json").read_text())
    del old["fit_focal"]
    (tmp_path / "m" / "config.json").write_text(json.dumps(old))
    back = NeuralPointModel.load(tmp_path / "m")
    assert back.fit_focal is None
    fill_fit_focal(back, tiny_scene)
    assert back.fit_focal == pytest.approx(model.fit_focal)  # 150 px at 160 wide, 96: 90


def test_the_viewer_never_draws_more_pixels_than_it_shows(tiny_scene):
    target = make_target(tiny_scene, tiny_cfg(), net_cfg=SMALL)  # fitted at 96 x 72
    r = NeuralRenderer(target.model)
    r.ort.enabled = False  # the network in PyTorch, where the hook sees it
    r.bf16 = False
    drawn = []
    target.model.net.register_forward_pre_hook(lambda m, a: drawn.append(a[0][0].shape[-2:]))
    cam = tiny_scene.views[0].camera  # 160 x 120: drawn at 96 x 72 (padded to 4) and enlarged
    assert r.render(cam).image.shape == (120, 160, 3) and list(drawn[-1]) == [72, 96]
    small = cam.resized(48, 36)
    assert r.render(small).image.shape == (36, 48, 3) and list(drawn[-1]) == [36, 48]


def test_an_offset_pass_is_moved_back_into_place():
    # A picture drawn half a pixel right and down of where it belongs (as a camera whose
    # principal point is offset draws it) is moved back: the plain picture again.
    y, x = torch.meshgrid(torch.arange(48.0) + 0.5, torch.arange(64.0) + 0.5, indexing="ij")

    def picture(dx: float, dy: float) -> torch.Tensor:
        u, v = x - dx, y - dy
        return torch.stack(
            [
                0.5 + 0.4 * torch.sin(0.3 * u + 0.2 * v),
                0.5 + 0.4 * torch.cos(0.25 * v),
                0.5 + 0.3 * torch.sin(0.2 * u),
            ]
        )

    plain, drawn = picture(0, 0), picture(0.5, 0.5)
    back = shift_image(drawn, 0.5, 0.5)
    inner = (slice(None), slice(3, -3), slice(3, -3))
    assert (back - plain)[inner].abs().max() < 0.01 < (drawn - plain)[inner].abs().max()
    # The model draws its passes that way; one pass is the plain view.
    rng = np.random.default_rng(0)
    pts = rng.normal(size=(6000, 3)).astype(np.float32)
    model = NeuralPointModel.create(pts, rng.random((6000, 3)).astype(np.float32), SMALL).eval()
    cam = Camera.look_at([0, 0, -4], [0, 0, 0], [0, -1, 0], 64, 48)
    with torch.no_grad():
        assert torch.equal(model.render_passes(cam, 1), model.render(cam))
        assert not torch.equal(model.render_passes(cam, 2), model.render(cam))
        assert model.render_passes(cam).shape == (3, 48, 64)


def test_a_still_view_is_refined_in_offset_passes_and_a_moving_one_is_not(tiny_scene):
    model = make_target(tiny_scene, tiny_cfg(), net_cfg=SMALL).model.eval()
    r = NeuralRenderer(model)
    cam = tiny_scene.views[0].camera
    frames = [r.render(cam, NeuralRenderOptions("neural")) for _ in range(6)]
    assert [f.passes for f in frames] == [1, 2, 3, 4, 4, 4]
    assert [f.progressive for f in frames] == [True, True, True, False, False, False]
    assert not np.array_equal(frames[0].image, frames[1].image)
    assert np.array_equal(frames[3].image, frames[5].image)  # done: shown again as it was
    with torch.no_grad():  # the fourth is the mean of the four passes
        want = model.render_passes(cam, supersample=1.0).clamp(0, 1).permute(1, 2, 0).numpy()
    assert np.abs(frames[3].image / 255.0 - want).max() < 3 / 255
    # Another camera starts again; a moving frame (preview) and a fit in progress: one pass.
    assert r.render(cam.scaled(0.5), NeuralRenderOptions("neural")).passes == 1
    moving = r.render(cam, NeuralRenderOptions("neural", preview=True))
    assert moving.passes == 0 and not moving.progressive
    model.train()  # as a fit running in the window leaves it
    assert r.render(cam, NeuralRenderOptions("neural")).passes == 0


def test_scoring_a_model_as_drawn_at_the_views_size_leaves_it_drawing_at_its_fits(tiny_scene):
    from engine.npbg.evaluate import evaluate_model

    model = make_target(tiny_scene, tiny_cfg(), net_cfg=SMALL).model
    focal = model.fit_focal
    res = evaluate_model(tiny_scene, model, 160, 4, at_fit_scale=False, passes=1)
    assert "drawn_at" not in res and model.fit_focal == focal  # (fitted at 96 px)
    assert evaluate_model(tiny_scene, model, 160, 4, passes=1)["drawn_at"] == "96x72"
