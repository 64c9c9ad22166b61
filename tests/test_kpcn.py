"""Kernel-predicting temporal denoiser: filtering, convexity, temporal reuse, training, loading,
scene kinds of the data generator."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from engine.denoise.kpcn import KernelConfig, KernelDenoiser, apply_kernel, demodulation
from engine.denoise.train import (
    DenoiserTrainer,
    TrainConfig,
    frame_inputs,
    load_denoiser,
    save_denoiser,
)
from engine.errors import NsvError

SMALL = KernelConfig(channels=[8, 12, 16])


def _spp_spy(seen: list[int]) -> type[KernelDenoiser]:
    """A KernelDenoiser class that appends the sample count of every call to ``seen``."""

    class Spy(KernelDenoiser):
        def forward(self, *args, spp=1, **kw):
            seen.append(int(spp))
            return super().forward(*args, spp=spp, **kw)

    return Spy


def frame(B=1, H=32, W=32, seed=0):
    g = torch.Generator().manual_seed(seed)
    return (
        torch.rand(B, 3, H, W, generator=g) * 2,
        torch.rand(B, 3, H, W, generator=g),
        torch.rand(B, 3, H, W, generator=g) * 2 - 1,
        torch.rand(B, 1, H, W, generator=g) * 5 + 0.1,
    )


def test_apply_kernel_delta_and_box():
    img = torch.rand(2, 3, 9, 11)
    delta = torch.zeros(2, 25, 9, 11)
    delta[:, 12] = 1  # the centre tap
    assert torch.allclose(apply_kernel(img, delta, 5), img)
    box = torch.full((2, 9, 9, 11), 1 / 9)
    expect = F.avg_pool2d(F.pad(img, (1, 1, 1, 1), mode="replicate"), 3, stride=1)
    assert torch.allclose(apply_kernel(img, box, 3), expect, atol=1e-6)
    shift = torch.zeros(2, 9, 9, 11)
    shift[:, 5] = 1  # tap (dy=1, dx=2): the right neighbour
    assert torch.allclose(apply_kernel(img, shift, 3)[..., :-1], img[..., 1:])


def test_output_is_bounded_by_the_input_samples():
    """Whatever the weights, each scale is a weighted average of input samples, and blending
    scales in log space can at most double the input's log range: no runaway values."""
    torch.manual_seed(0)
    m = KernelDenoiser(SMALL).eval()
    r, a, n, d = frame()
    with torch.no_grad():
        out, state = m(r, a, n, d)
    div = demodulation(a, d)
    demod = r / div
    assert out.shape == (1, 3, 32, 32) and len(state) == 1
    hi = torch.expm1(2 * torch.log1p(demod.amax((2, 3), keepdim=True)))
    assert ((out / div) <= hi + 1e-4).all() and (out >= 0).all() and torch.isfinite(out).all()
    # A constant image stays that constant whatever the network predicts.
    flat = torch.full_like(r, 0.7) * div
    with torch.no_grad():
        assert torch.allclose(m(flat, a, n, d)[0], flat, atol=1e-5)


def test_previous_output_and_spp_change_the_result():
    torch.manual_seed(0)
    m = KernelDenoiser(SMALL).eval()
    r, a, n, d = frame()
    with torch.no_grad():
        first, state = m(r, a, n, d)
        again, _ = m(r, a, n, d, state)  # still camera: the previous output is blended in
        high, _ = m(r, a, n, d, spp=1024)
        # Motion with nothing valid (all disoccluded) falls back to the spatial filter.
        grid = torch.zeros(1, 32, 32, 2)
        unseen, _ = m(r, a, n, d, [torch.full_like(r, 50.0)], (grid, torch.zeros_like(d)))
    assert not torch.allclose(first, again)
    assert not torch.allclose(first, high)
    assert torch.allclose(unseen, first, atol=1e-5)


def test_history_clamp_stops_a_carried_firefly():
    """With ``history_clamp`` the filtered previous output stays within exp(±tol) of this
    frame's spatial result: a firefly in the history is not carried into the next frame
    (without the clamp it is, through the temporal blend)."""
    torch.manual_seed(0)
    m = KernelDenoiser(SMALL).eval()
    r, a, n, d = frame()
    with torch.no_grad():
        spatial, _ = m(r, a, n, d)  # no history: the spatial filter alone
        prev = spatial.clone()
        prev[..., 16, 16] = 1e4  # a firefly in the previous output
        free, _ = m(r, a, n, d, [prev])
        m.cfg.history_clamp = 0.5
        clamped, _ = m(r, a, n, d, [prev])
    assert free[..., 16, 16].max() > 10 * spatial[..., 16, 16].max()
    bound = spatial * math.exp(0.5) + 1e-3 + 1e-5  # (+1e-3 in demodulated units, albedo <= 1)
    assert (clamped <= bound).all()
    assert not torch.allclose(clamped, spatial)  # the history is still blended in


def test_cpu_inference_in_bf16_stays_close_to_fp32(monkeypatch):
    """Where the CPU computes bf16 natively the U-Net runs in it at inference, not in
    training: outputs within a fraction of a percent of fp32; ``NSV_CPU_BF16=0`` turns it off."""
    from engine.device import cpu_bf16

    monkeypatch.setenv("NSV_CPU_BF16", "0")
    assert not cpu_bf16()
    monkeypatch.delenv("NSV_CPU_BF16")
    if not cpu_bf16():
        pytest.skip("this CPU has no native bf16")
    torch.manual_seed(0)
    model = KernelDenoiser(SMALL).eval()
    r, a, n, d = frame(H=64, W=64)
    with torch.no_grad():
        bf16 = model(r, a, n, d)[0]
        monkeypatch.setenv("NSV_CPU_BF16", "0")
        fp32 = model(r, a, n, d)[0]
        monkeypatch.delenv("NSV_CPU_BF16")
        training = model.train()(r, a, n, d)[0]
    assert not torch.equal(bf16, fp32)
    assert float(((bf16 - fp32).abs() / (fp32.abs() + 0.05)).mean()) < 0.01
    assert torch.equal(training, fp32)


@pytest.mark.parametrize("oidn", [False, True])
def test_a_wider_model_warm_started_from_a_narrow_one_draws_the_same_picture(oidn):
    """``load_wider``: the narrow model's weights in the leading part of every feature block
    (the decoder's inputs are two blocks) and zero weights out of the new channels: the same
    output until training moves them; a narrower target is refused."""
    torch.manual_seed(0)
    narrow = KernelDenoiser(KernelConfig(channels=[8, 12, 16], oidn=oidn)).eval()
    wide = KernelDenoiser(KernelConfig(channels=[12, 16, 24], oidn=oidn)).eval()
    wide.load_wider(narrow.state_dict(), [8, 12, 16])
    r, a, n, d = frame()
    guide = {"guide": torch.rand(1, 3, 32, 32)} if oidn else {}
    prev = [torch.rand(1, 3, 32, 32)]
    with torch.no_grad():
        for state in (None, prev):
            expect = narrow(r, a, n, d, state=state, **guide)[0]
            assert torch.allclose(wide(r, a, n, d, state=state, **guide)[0], expect, atol=1e-5)
    with pytest.raises(NsvError, match="wider"):
        narrow.load_wider(wide.state_dict(), [12, 16, 24])


def test_background_and_albedo_free_surfaces_are_not_demodulated():
    d = torch.zeros(1, 1, 4, 4)
    d[..., :3] = 1.0
    albedo = torch.full((1, 3, 4, 4), 0.5)
    albedo[..., 0, 0] = torch.tensor([0.03, 0.01, 0.01])  # a dark red surface
    albedo[..., 1, :] = 0.0  # an emitter, glass or metal: the albedo AOV is 0
    div = demodulation(albedo, d)
    assert torch.allclose(div[0, :, 0, 0], torch.tensor([0.03, 0.02, 0.02]))  # floored
    assert torch.allclose(div[..., 1, :3], torch.ones(1, 3, 3))
    assert torch.allclose(div[..., 3], torch.ones_like(div[..., 3]))  # escaped rays
    assert torch.allclose(div[..., 2, :3], torch.full((1, 3, 3), 0.5))


def test_high_spp_inputs_imitate_convergence():
    K, T, H, W = 4, 2, 8, 8
    g = torch.Generator().manual_seed(1)
    ref = torch.rand(T, H, W, 3, generator=g)
    noisy = ref[:, None] + torch.randn(T, K, H, W, 3, generator=g) * 0.5
    seq = {
        "noisy": noisy.clamp(min=0),
        "reference": ref,
        "albedo": torch.ones(T, H, W, 3),
        "normal": torch.zeros(T, H, W, 3),
        "depth": torch.ones(T, H, W),
    }
    err = [
        (frame_inputs(seq, 0, s)[0][0].permute(1, 2, 0) - ref[0]).abs().mean()
        for s in (4, 64, 1024)
    ]
    assert err[0] > err[1] > err[2]  # more samples, closer to the reference
    seq["noisy_spp64"] = ref + 0.01
    assert torch.allclose(frame_inputs(seq, 0, 64)[0][0].permute(1, 2, 0), ref[0] + 0.01)


def test_kernel_training_lowers_the_loss_and_round_trips(tmp_path):
    pytest.importorskip("mitsuba")
    from engine.denoise.data import write_dataset

    data = tmp_path / "data"
    write_dataset(
        data, 2, frames=3, size=32, samples=2, ref_spp=16, seed=5, progress=False,
        kinds=("cornell", "studio"),
    )  # fmt: skip
    cfg = TrainConfig(steps=40, batch=2, crop=16, frames=3, checkpoint_every=1000, lr=3e-3,
                      high_spp=0.3)  # fmt: skip
    t = DenoiserTrainer(data, tmp_path / "model", cfg, SMALL)
    t.run(progress=False)
    assert np.mean(t.losses[-8:]) < 0.9 * np.mean(t.losses[:8])
    back = load_denoiser(tmp_path / "model")
    assert isinstance(back, KernelDenoiser) and back.cfg == SMALL
    with torch.no_grad():
        assert torch.allclose(t.model.eval()(*frame())[0], back(*frame())[0], atol=1e-6)
    save_denoiser(back, tmp_path / "copy", {})
    assert isinstance(load_denoiser(tmp_path / "copy"), KernelDenoiser)


def test_scene_kinds_build_and_the_held_out_kind_is_separate(tmp_path):
    mi = pytest.importorskip("mitsuba")
    from engine.denoise.scenes import HELDOUT_KINDS, TRAIN_KINDS, scene_dict
    from engine.mitsuba_scene import choose_variant

    choose_variant()
    assert not set(HELDOUT_KINDS) & set(TRAIN_KINDS)
    for kind in TRAIN_KINDS + HELDOUT_KINDS:
        d = scene_dict(kind, np.random.default_rng(3), [], tmp_path)
        scene = mi.load_dict(d)
        assert len(scene.shapes()) >= 3, kind
    assert (tmp_path / "torus_knot.obj").is_file()  # the held-out kind's own mesh
    with pytest.raises(ValueError, match="unknown scene kind"):
        scene_dict("forest", np.random.default_rng(0), [], tmp_path)


def test_progressive_renderer_feeds_the_kernel_denoiser_its_sample_count():
    pytest.importorskip("mitsuba")
    from engine.mitsuba_scene import MitsubaScene
    from engine.pathtrace.progressive import PathTraceOptions, ProgressiveRenderer

    seen: list[int] = []
    Spy = _spp_spy(seen)
    pr = ProgressiveRenderer(MitsubaScene("cornell-box", 32, 32), Spy(SMALL).eval())
    cam = pr.scene.home_camera
    for _ in range(3):  # a still camera accumulates: 1, 2, 3 spp
        f = pr.render(cam, PathTraceOptions(denoise=True))
    assert seen == [1, 2, 3] and f.denoised and np.isfinite(f.image).all()
    assert len(pr.denoiser_state) == 1 and pr.denoiser_state[0].shape == (1, 3, 32, 32)


def test_a_still_view_is_denoised_about_eight_times_per_doubling():
    """Accumulating samples: every sample is denoised up to 15 spp, then about 8 times per
    doubling; in between the last denoised image stands; the last sample is always denoised."""
    pytest.importorskip("mitsuba")
    from engine.mitsuba_scene import MitsubaScene
    from engine.pathtrace.progressive import PathTraceOptions, ProgressiveRenderer, denoise_due

    assert [n for n in range(1, 70) if denoise_due(n)] == [
        *range(1, 16), *range(16, 32, 2), *range(32, 64, 4), 64
    ]  # fmt: skip
    seen: list[int] = []
    Spy = _spp_spy(seen)
    pr = ProgressiveRenderer(MitsubaScene("cornell-box", 16, 16), Spy(SMALL).eval())
    cam = pr.scene.home_camera
    opts = PathTraceOptions(denoise=True, max_spp=37)
    images = [pr.render(cam, opts).image for _ in range(40)]
    assert seen == [n for n in range(1, 38) if denoise_due(n)] + [37]
    assert np.array_equal(images[15], images[16])  # 17 spp: not due, the 16-spp image stands
    assert not np.array_equal(images[16], images[17])  # 18 spp: denoised again


def test_fresh_frames_use_the_fast_denoiser_and_accumulation_the_main_one(tmp_path):
    """A denoiser folder with a ``fast`` companion: 1-spp frames (a moving camera restarts
    accumulation) go to the fast model, accumulated ones to the main model; the status line
    names the one used."""
    pytest.importorskip("mitsuba")
    pytest.importorskip("pyoidn")
    from engine.denoise.train import load_denoisers
    from engine.modes import build_renderers
    from engine.open_path import load_scene
    from engine.pathtrace.progressive import PathTraceOptions

    save_denoiser(
        KernelDenoiser(KernelConfig(channels=[8, 12, 16], oidn=True)), tmp_path / "dn", {}
    )
    main, fast = load_denoisers(tmp_path / "dn")
    assert fast is None  # no companion: the main model does everything
    save_denoiser(KernelDenoiser(KernelConfig(channels=[8, 12, 8])), tmp_path / "dn" / "fast", {})
    main, fast = load_denoisers(tmp_path / "dn")
    assert main.cfg.oidn and fast is not None and fast.cfg.channels == [8, 12, 8]
    pt = build_renderers(load_scene("cornell-box"), denoiser_dir=tmp_path / "dn").pathtrace
    used = []
    for m, name in ((pt.denoiser, "main"), (pt.fast_denoiser, "fast")):
        m.register_forward_hook(lambda *_a, name=name: used.append(name))
    cam = pt.scene.home_camera.scaled(0.1)
    labels = [pt.render(cam, PathTraceOptions(denoise=True)).denoiser for _ in range(3)]
    assert used == ["fast", "main", "main"]
    assert labels == ["temporal kernels", "temporal kernels + OIDN guide", labels[1]]
    pt.render(cam.scaled(1.1), PathTraceOptions(denoise=True))  # the view changed: fresh frame
    assert used[-1] == "fast"


@pytest.mark.parametrize("budget_ms", [1e6, 1e-6])
def test_moving_frames_get_the_main_denoiser_when_it_fits_the_budget(tmp_path, budget_ms):
    """A still view prepares the moving size and times the main (OIDN-guided) model there: the
    fresh frames of a moving camera at that size get it when it takes at most half the frame
    budget, else the fast model; other fresh frames (a new still view) keep the fast one."""
    pytest.importorskip("mitsuba")
    pytest.importorskip("pyoidn")
    from engine.modes import build_renderers
    from engine.open_path import load_scene
    from engine.pathtrace.progressive import PathTraceOptions

    save_denoiser(
        KernelDenoiser(KernelConfig(channels=[8, 12, 16], oidn=True)), tmp_path / "dn", {}
    )
    save_denoiser(KernelDenoiser(KernelConfig(channels=[8, 12, 8])), tmp_path / "dn" / "fast", {})
    pt = build_renderers(load_scene("cornell-box"), denoiser_dir=tmp_path / "dn").pathtrace
    used = []
    for m, name in ((pt.denoiser, "main"), (pt.fast_denoiser, "fast")):
        m.register_forward_hook(lambda *_a, name=name: used.append(name))
    cam = pt.scene.home_camera.scaled(0.2)
    still = PathTraceOptions(denoise=True, moving_scale=0.5, frame_budget_ms=budget_ms)
    for _ in range(2):  # the 2nd sample prepares (and times) the moving size
        pt.render(cam, still)
    used.clear()
    small = cam.scaled(0.5)
    moving = PathTraceOptions(denoise=True, frame_budget_ms=budget_ms)
    frame = pt.render(small, moving)
    expect = "main" if budget_ms > 1 else "fast"
    assert used == [expect]
    assert frame.denoiser.endswith("OIDN guide") == (expect == "main")
    pt.render(cam.scaled(0.3), moving)  # a fresh frame of another size
    assert used[-1] == "fast"


def test_a_fast_guided_model_is_compared_against_oidn_at_high_quality(tmp_path):
    """The viewer's side-by-side shows OIDN at its high preset next to a model guided by the
    fast one (a fresh frame): the right pane is OIDN-high's image of the same estimate."""
    pytest.importorskip("mitsuba")
    pytest.importorskip("pyoidn")
    from engine.denoise.oidn import denoise_hwc
    from engine.modes import build_renderers
    from engine.open_path import load_scene
    from engine.pathtrace.progressive import PathTraceOptions, to_display

    cfg = KernelConfig(channels=[8, 12, 16], oidn=True, fast_guide_below=16)
    save_denoiser(KernelDenoiser(cfg), tmp_path / "dn", {})
    pt = build_renderers(load_scene("cornell-box"), denoiser_dir=tmp_path / "dn").pathtrace
    cam = pt.scene.home_camera.scaled(0.2)
    opts = PathTraceOptions(denoise=True, denoiser="compare")
    for _ in range(2):
        frame = pt.render(cam, opts)
    assert frame.denoiser == "temporal kernels + OIDN guide (fast) | Intel OIDN"
    assert frame.spp == 2
    m = pt.mean
    high = to_display(denoise_hwc(m["radiance"], m["albedo"], m["normal"], "high"))
    cut = int(opts.wipe * high.shape[1])
    assert np.array_equal(frame.image[:, cut + 1 :], high[:, cut + 1 :])
    fast = to_display(denoise_hwc(m["radiance"], m["albedo"], m["normal"], "fast"))
    assert not np.array_equal(fast[:, cut + 1 :], high[:, cut + 1 :])


def test_guided_model_filters_with_oidn_and_learns_only_the_temporal_part():
    """A warm start keeps the plain model's weights (the guide's inputs start ignored); a first
    frame is the guide itself, a converged input (1024 spp) passes through, and with a history
    the temporal kernels blend the reprojected previous output in."""
    from engine.denoise.kpcn import CONVERGED_SPP

    torch.manual_seed(0)
    plain = KernelDenoiser(SMALL).eval()
    guided = KernelDenoiser(KernelConfig(channels=[8, 12, 16], oidn=True)).eval()
    guided.load_compatible(plain.state_dict())
    r, a, n, d = frame()
    guide = torch.rand(1, 3, 32, 32) * 2
    with torch.no_grad():
        first, _ = guided(r, a, n, d, guide=guide)
        converged, _ = guided(r, a, n, d, spp=CONVERGED_SPP[1], guide=guide)
        later, _ = guided(r, a, n, d, state=[torch.rand(1, 3, 32, 32)], guide=guide)
    assert torch.allclose(first, guide, atol=1e-5)
    assert torch.allclose(converged, r, atol=1e-5)
    assert not torch.allclose(later, first, atol=1e-3)
    with pytest.raises(NsvError, match="shape"):
        KernelDenoiser(KernelConfig(channels=[8, 12, 20])).load_compatible(plain.state_dict())


def test_guided_model_reads_only_the_temporal_head_channels():
    """The guided model computes just the temporal taps and blend of the finest head: NaN in
    every other head channel must not reach the output, and changing the temporal channels
    must change it (the slice picks the right channels, in pixel-shuffle order)."""
    from engine.denoise.kpcn import TAPS, TEMPORAL_TAPS

    torch.manual_seed(0)
    guided = KernelDenoiser(KernelConfig(channels=[8, 12, 16], oidn=True)).eval()
    r, a, n, d = frame()
    guide, prev = torch.rand(1, 3, 32, 32) * 2, [torch.rand(1, 3, 32, 32)]
    with torch.no_grad():
        before, _ = guided(r, a, n, d, state=prev, guide=guide)
        first = 4 * (TAPS * TAPS + 1)  # spatial taps and scale blend: 4 sub-pixels each
        assert guided.head0.out_channels == first + 4 * (TEMPORAL_TAPS**2 + 1)
        guided.head0.bias[:first] = float("nan")
        unused, _ = guided(r, a, n, d, state=prev, guide=guide)
        guided.head0.bias[first:] += 1.0
        used, _ = guided(r, a, n, d, state=prev, guide=guide)
    assert torch.isfinite(unused).all()
    assert torch.equal(unused, before)
    assert not torch.allclose(used, before, atol=1e-4)


def test_oidn_guide_is_computed_when_not_given():
    from engine.denoise.oidn import available, denoise_bchw

    if not available():
        pytest.skip("pyoidn is not installed")
    guided = KernelDenoiser(KernelConfig(channels=[8, 12, 16], oidn=True)).eval()
    r, a, n, d = frame()
    with torch.no_grad():
        given, _ = guided(r, a, n, d, guide=denoise_bchw(r, a, n))
        own, _ = guided(r, a, n, d)
    assert torch.allclose(given, own, atol=1e-6)
    assert guided.label.endswith("OIDN guide")


def test_fresh_frames_get_oidns_fast_preset_as_their_guide():
    """With ``fast_guide_below`` a guided model filters inputs of fewer samples with OIDN's
    fast preset (a different image from the high one), and the others with the high one - per
    item of a batch."""
    from engine.denoise.oidn import available, denoise_bchw

    if not available():
        pytest.skip("pyoidn is not installed")
    model = KernelDenoiser(KernelConfig(channels=[8, 12, 16], oidn=True, fast_guide_below=16))
    model.eval()
    assert [model.guide_quality(s) for s in (1, 15, 16, 1024)] == ["fast"] * 2 + ["high"] * 2
    r, a, n, d = frame(B=2, H=64, W=64)
    with torch.no_grad():
        own, _ = model(r, a, n, d, spp=torch.tensor([1.0, 16.0]))
        fast, _ = model(r, a, n, d, guide=denoise_bchw(r, a, n, "fast"))
        high, _ = model(r, a, n, d, guide=denoise_bchw(r, a, n, "high"))
    assert torch.allclose(own[0], fast[0], atol=1e-6)
    assert torch.allclose(own[1], high[1], atol=1e-6)
    assert not torch.allclose(fast, high, atol=1e-3)


def test_guided_training_caches_oidn_per_frame(tmp_path):
    pytest.importorskip("mitsuba")
    pytest.importorskip("pyoidn")
    from engine.denoise.data import write_dataset

    data = tmp_path / "data"
    write_dataset(data, 1, frames=3, size=32, samples=2, ref_spp=8, seed=6, progress=False)
    cfg = TrainConfig(steps=4, batch=2, crop=16, frames=3, checkpoint_every=1000, high_spp=0.0)
    t = DenoiserTrainer(data, tmp_path / "m", cfg, KernelConfig(channels=[8, 12, 16], oidn=True))
    t.run(progress=False)
    assert t._guides and all(g.shape == (1, 3, 32, 32) for g in t._guides.values())
    assert load_denoiser(tmp_path / "m").cfg.oidn
