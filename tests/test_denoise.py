"""Recurrent denoiser: model, training with checkpoints, evaluation, use in path tracing."""

from __future__ import annotations

import numpy as np
import pytest
import torch

pytest.importorskip("mitsuba")

from engine.denoise.data import load_sequence, write_dataset
from engine.denoise.evaluate import evaluate
from engine.denoise.model import DenoiserConfig, RecurrentDenoiser
from engine.denoise.train import (
    DenoiserTrainer,
    TrainConfig,
    load_denoiser,
    save_denoiser,
)
from engine.errors import NsvError

SMALL = DenoiserConfig(channels=[8, 12, 16])


@pytest.fixture(scope="module")
def tiny_data(tmp_path_factory):
    d = tmp_path_factory.mktemp("dn")
    write_dataset(d, 2, frames=3, size=32, samples=2, ref_spp=16, seed=5, progress=False)
    return d


def frame(B=1, H=32, W=32):
    g = torch.Generator().manual_seed(0)
    return (
        torch.rand(B, 3, H, W, generator=g) * 2,
        torch.rand(B, 3, H, W, generator=g),
        torch.rand(B, 3, H, W, generator=g) * 2 - 1,
        torch.rand(B, 1, H, W, generator=g) * 5,
    )


@pytest.mark.parametrize("afm", [True, False])
def test_model_shapes_and_recurrent_state(afm):
    m = RecurrentDenoiser(DenoiserConfig(channels=[8, 12, 16], afm=afm))
    out, state = m(*frame())
    assert out.shape == (1, 3, 32, 32) and (out >= 0).all()
    assert [s.shape[1] for s in state] == [8, 12, 16]
    out2, _ = m(*frame(), state)
    assert not torch.allclose(out, out2)  # the hidden state changes the next frame


def test_dataset_sequences_have_all_buffers(tiny_data):
    seq = load_sequence(sorted(tiny_data.glob("seq_*.safetensors"))[0])
    assert seq["noisy"].shape == (3, 2, 32, 32, 3) and seq["reference"].shape == (3, 32, 32, 3)
    assert seq["albedo"].shape == (3, 32, 32, 3) and seq["depth"].shape == (3, 32, 32)
    # The reference is less noisy than one sample: its error to the 2-sample mean is smaller.
    assert torch.isfinite(seq["noisy"]).all()
    assert seq["reference"].var() < seq["noisy"][:, 0].var()


def test_training_with_reprojection_lowers_the_loss(tiny_data, tmp_path):
    cfg = TrainConfig(steps=40, batch=2, crop=16, frames=3, checkpoint_every=1000, lr=3e-3)
    model_cfg = DenoiserConfig(channels=[8, 12, 16], reproject=True)
    t = DenoiserTrainer(tiny_data, tmp_path, cfg, model_cfg)
    t.run(progress=False)
    assert np.mean(t.losses[-8:]) < 0.9 * np.mean(t.losses[:8])
    assert load_denoiser(tmp_path).cfg.reproject


def test_training_checkpoints_and_resumes(tiny_data, tmp_path):
    cfg = TrainConfig(steps=6, batch=2, crop=16, frames=3, checkpoint_every=3)
    a = DenoiserTrainer(tiny_data, tmp_path / "a", cfg, SMALL)
    a.run(progress=False)
    assert len(a.losses) == 6 and all(np.isfinite(a.losses))
    b = DenoiserTrainer(tiny_data, tmp_path / "b", cfg, SMALL)
    b.run(progress=False, until=3)  # interrupted after the step-3 checkpoint
    c = DenoiserTrainer(tiny_data, tmp_path / "b", cfg, SMALL)
    assert c.load_checkpoint() and c.step == 3
    c.run(progress=False)
    assert np.allclose(a.losses, c.losses, rtol=1e-4)  # resumed == uninterrupted
    other = DenoiserTrainer(tiny_data, tmp_path / "b", cfg, DenoiserConfig(channels=[8, 16, 16]))
    with pytest.raises(NsvError, match="does not match"):
        other.load_checkpoint()


def test_save_load_round_trip(tmp_path):
    m = RecurrentDenoiser(SMALL)
    save_denoiser(m, tmp_path, {"note": 1})
    back = load_denoiser(tmp_path)
    with torch.no_grad():
        assert torch.allclose(m(*frame())[0], back(*frame())[0])
    with pytest.raises(NsvError, match="no denoiser"):
        load_denoiser(tmp_path / "missing")


@pytest.mark.parametrize("reproject", [False, True])
def test_evaluate_reports_every_method(tiny_data, reproject):
    model = RecurrentDenoiser(DenoiserConfig(channels=[8, 12, 16], reproject=reproject)).eval()
    res = evaluate(model, tiny_data, spps=(1, 2))
    assert set(res["spp"]) == {1, 2}
    assert {"noisy", "per-frame", "recurrent"} <= set(res["spp"][1])
    assert ("recurrent-unwarped" in res["spp"][1]) == reproject
    for v in res["spp"][1].values():
        assert np.isfinite(v["psnr"]) and 0 <= v["ssim"] <= 1


@pytest.mark.parametrize("reproject", [False, True])
def test_progressive_renderer_denoises_with_state(reproject):
    from engine.mitsuba_scene import MitsubaScene
    from engine.pathtrace.progressive import PathTraceOptions, ProgressiveRenderer

    net = RecurrentDenoiser(DenoiserConfig(channels=[8, 12, 16], reproject=reproject)).eval()
    pr = ProgressiveRenderer(MitsubaScene("cornell-box", 32, 32), net)
    cam = pr.scene.home_camera
    f = pr.render(cam, PathTraceOptions(denoise=True))
    assert f.denoised and f.image.shape == (32, 32, 3)
    assert pr.denoiser_state is not None
    # A camera move: the state is carried (warped by reprojecting models) into the new view.
    orbit = cam.with_pose(cam.world_to_camera @ np.diag([1.0, 1, 1, 1]))
    orbit.world_to_camera[0, 3] += 0.1
    g = pr.render(orbit, PathTraceOptions(denoise=True))
    assert g.spp == 1 and np.isfinite(g.image).all()
    split = pr.render(cam, PathTraceOptions(denoise=True, split=True)).image
    assert (split[:, 16] == 255).all()  # the split line
    moved = pr.render(cam, PathTraceOptions(denoise=True, split=True, wipe=0.25)).image
    assert (moved[:, 8] == 255).all() and not (moved[:, 16] == 255).all()  # the line moves
    pr.reset()
    assert pr.denoiser_state is None


def test_oidn_and_ours_side_by_side():
    """denoiser='oidn' shows Intel OIDN's filtered estimate; 'compare' shows ours left of the
    wipe and OIDN right of it (the panes are exactly those images); an OIDN-guided model's
    guide is that same OIDN image, computed once; the error plot gets OIDN's error too."""
    pytest.importorskip("pyoidn")
    from engine.denoise.kpcn import KernelConfig, KernelDenoiser
    from engine.mitsuba_scene import MitsubaScene
    from engine.pathtrace.progressive import (
        PathTraceOptions,
        ProgressiveRenderer,
        split_panes,
        to_display,
    )

    guided = KernelDenoiser(KernelConfig(channels=[8, 12, 16], oidn=True)).eval()
    pr = ProgressiveRenderer(MitsubaScene("cornell-box", 32, 32), guided)
    cam = pr.scene.home_camera.resized(32, 32)
    o = pr.render(cam, PathTraceOptions(denoise=True, denoiser="oidn"))
    assert o.denoised and o.denoiser == "Intel OIDN"
    assert np.array_equal(o.image, to_display(pr._oidn["high"][2]))
    guides = []
    real = guided.forward

    def spy(*args, guide=None, **kwargs):
        guides.append(guide)
        return real(*args, guide=guide, **kwargs)

    guided.forward = spy
    opts = PathTraceOptions(denoise=True, denoiser="compare", wipe=0.25, reference_spp=16)
    c = pr.render(cam, opts)
    assert c.denoiser.endswith(" | Intel OIDN") and c.spp == 2
    ours, oidn = to_display(pr._clean[2]), to_display(pr._oidn["high"][2])
    ref = to_display(pr.reference)
    assert np.array_equal(c.image, split_panes([ours, oidn, ref], 0.25))
    cut = int(0.25 * 32 * 2 / 3)
    assert np.array_equal(c.image[:, :cut], ours[:, :cut]) and (c.image[:, cut] == 255).all()
    # The guide passed to the model is OIDN's image of this estimate (not computed again).
    assert len(guides) == 1 and guides[0] is not None
    assert np.allclose(guides[0][0, :, :32, :32].permute(1, 2, 0).numpy(), pr._oidn["high"][2])
    # Each curve is its own image's error against the reference (whether OIDN beats 2 spp on
    # a 32x32 image depends on the renderer's noise: Mitsuba's scalar variant draws other noise
    # than its LLVM one).
    from engine.metrics import rel_mse

    err = c.error
    assert err.oidn == pytest.approx(rel_mse(pr._oidn["high"][2], pr.reference))
    assert err.denoised == pytest.approx(rel_mse(pr._clean[2], pr.reference))
    assert err.noisy == pytest.approx(rel_mse(pr.mean["radiance"], pr.reference))
    assert err.oidn > 0 and err.oidn != err.noisy


def test_a_stale_still_frame_skips_the_denoiser():
    """While a newer request waits (the render worker says so), a still view's frame does not
    spend the main denoiser's time on an image about to be replaced: it shows the last
    denoised estimate of that view, or the noisy one. Fresh 1-spp frames are always denoised."""
    from engine.mitsuba_scene import MitsubaScene
    from engine.pathtrace.progressive import PathTraceOptions, ProgressiveRenderer

    calls = []

    class Counting(RecurrentDenoiser):
        def forward(self, *args, **kwargs):
            calls.append(kwargs.get("spp"))
            return super().forward(*args, **kwargs)

    pr = ProgressiveRenderer(MitsubaScene("cornell-box", 24, 24), Counting(SMALL).eval())
    cam = pr.scene.home_camera.resized(24, 24)
    opts = PathTraceOptions(denoise=True)
    pr.superseded = lambda: True
    first = pr.render(cam, opts)  # 1 spp: denoised even though a newer request waits
    assert first.denoised and calls == [1]
    second = pr.render(cam, opts)  # 2 spp, stale: the last denoised estimate stands
    assert second.spp == 2 and second.denoised and calls == [1]
    assert np.array_equal(second.image, first.image)
    pr.superseded = lambda: False
    third = pr.render(cam, opts)  # 3 spp, current: denoised again
    assert third.denoised and calls == [1, 3]
    pr.reset()
    pr.superseded = lambda: True
    pr.render(cam, opts)
    calls.clear()
    assert pr.render(cam, opts).denoised  # the last estimate of this view
    assert calls == []


def test_three_way_split_with_reference():
    from engine.mitsuba_scene import MitsubaScene
    from engine.pathtrace.progressive import PathTraceOptions, ProgressiveRenderer, to_display

    pr = ProgressiveRenderer(MitsubaScene("cornell-box", 36, 24), RecurrentDenoiser(SMALL).eval())
    cam = pr.scene.home_camera.resized(36, 24)
    img = pr.render(cam, PathTraceOptions(denoise=True, split=True, reference_spp=16)).image
    assert (img[:, 12] == 255).all() and (img[:, 24] == 255).all()  # two split lines
    ref = to_display(pr.reference)
    assert np.array_equal(img[:, 25:], ref[:, 25:])  # the right third is the reference
