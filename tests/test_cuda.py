"""The engine on CUDA: the same pictures as on the CPU, and the CUDA viewing path (half
precision, CUDA graphs) of the rendering network. Skipped without a CUDA device, except the
first test (the CPU fallback)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from engine.assets import DEMO_SCENE, DENOISER, HOLOGAN, PRETRAINED_NETWORK, PRETRAINED_PREVIEW
from engine.npbg.cuda import CudaNetworks

cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")


def _levels(net, h: int, w: int, device, seed: int = 0) -> list[torch.Tensor]:
    """Descriptor pyramids like a rasterizer's: values in [-1, 1], about a third empty."""
    g = torch.Generator().manual_seed(seed)
    out = []
    for s in range(net.cfg.num_scales):
        x = torch.rand(1, net.cfg.descriptor_dim, h >> s, w >> s, generator=g) * 2 - 1
        x *= torch.rand(1, 1, h >> s, w >> s, generator=g) > 0.3
        out.append(x.to(device))
    return out


def test_cpu_inputs_fall_back_to_the_caller():
    from engine.npbg.network import NetworkConfig, RenderingNetwork

    net = RenderingNetwork(NetworkConfig(num_scales=3, channels=[8, 12, 16]))
    assert CudaNetworks().run(net, _levels(net, 32, 32, "cpu")) is None


@cuda
@pytest.mark.parametrize("weights", [PRETRAINED_NETWORK, PRETRAINED_PREVIEW])
@pytest.mark.parametrize("graphs", [False, True])
def test_half_precision_network_draws_the_fp32_picture(weights, graphs):
    from engine.npbg.fit import load_network

    net = load_network(weights).cuda().eval()
    runner = CudaNetworks()
    runner.graphs_enabled = graphs
    levels = _levels(net, 160, 224, "cuda")
    with torch.no_grad():
        ref = net(levels)
    for _ in range(runner.capture_after + 2):  # plain calls, the recording, then replays
        out = runner.run(net, levels)
        assert out.shape == ref.shape and out.dtype == torch.float32
        err = (out - ref).abs()
        assert err.mean() < 0.5 / 255 and err.max() < 6 / 255, (err.mean(), err.max())
    assert runner.label.startswith("cuda fp16") or runner.label.startswith("cuda bf16")
    assert runner.label.endswith("graph") == graphs


@cuda
def test_graph_replays_new_inputs_sizes_and_weights():
    """A replay reads this call's inputs and the weights as they are now (a fit on the same
    GPU changes them in place); another size gets its own recording."""
    from engine.npbg.fit import load_network

    net = load_network(PRETRAINED_PREVIEW).cuda().eval()
    runner = CudaNetworks()
    runner.capture_after = 1
    a, b = _levels(net, 128, 128, "cuda", 1), _levels(net, 128, 128, "cuda", 2)
    out_a = runner.run(net, a)
    out_b = runner.run(net, b)
    assert runner.label.endswith("graph")
    with torch.no_grad():
        assert (out_b - net(b)).abs().max() < 6 / 255
        assert (out_a - out_b).abs().mean() > 0.01  # not the recorded call's picture
        for p in net.parameters():
            p.mul_(0.8)  # in place, as an optimizer step
        moved = runner.run(net, b)
        assert (moved - net(b)).abs().max() < 6 / 255
        assert (moved - out_b).abs().mean() > 1e-3
    small = _levels(net, 64, 96, "cuda")
    assert runner.run(net, small).shape[-2:] == (64, 96)


@cuda
def test_neural_renderer_on_cuda_draws_the_cpu_picture():
    from engine.navigation import home_navigator
    from engine.npbg.files import find_fitted_model
    from engine.npbg.model import NeuralPointModel
    from engine.npbg.render import NeuralRenderer, NeuralRenderOptions
    from engine.open_path import load_scene

    folder = find_fitted_model(DEMO_SCENE)
    cam = home_navigator(load_scene(DEMO_SCENE)).camera(200, 152)
    cpu = NeuralRenderer(NeuralPointModel.load(folder, torch.device("cpu")).eval())
    cpu.ort.enabled = False
    gpu = NeuralRenderer(NeuralPointModel.load(folder, torch.device("cuda")).eval())
    for preview in (False, True):
        opts = NeuralRenderOptions(preview=preview)
        ref = cpu.render(cam, opts).image.astype(int)
        for _ in range(gpu.cuda.capture_after + 1):
            frame = gpu.render(cam, opts)
        assert frame.runtime.startswith("cuda")
        diff = np.abs(frame.image.astype(int) - ref)
        # The rasterizers agree on all but a few depth ties; the network differs by rounding.
        assert diff.mean() < 1.0 and np.mean(diff > 16) < 0.003, (diff.mean(), np.mean(diff > 16))
    assert frame.runtime.endswith("graph")
    # While a fit trains the model (train mode) nothing new is recorded: a recording would
    # capture or break the fit's kernels on the same GPU.
    gpu.model.train()
    other = cam.resized(168, 128)
    for _ in range(gpu.cuda.capture_after + 2):
        frame = gpu.render(other)
    assert frame.runtime.startswith("cuda") and not frame.runtime.endswith("graph")


@cuda
def test_denoisers_on_cuda_match_the_cpu(monkeypatch):
    from engine.denoise.train import load_denoisers

    # cuDNN's TF32 convolutions (on by default since Ampere) round to 10-bit mantissas: on an
    # H200 they put outputs of ~1-3 up to 0.017 off the CPU's. The comparison is of fp32 math.
    monkeypatch.setattr(torch.backends.cudnn, "allow_tf32", False)
    monkeypatch.setattr(torch.backends.cuda.matmul, "allow_tf32", False)
    monkeypatch.setenv("NSV_CPU_BF16", "0")  # ... and the CPU's in fp32 too

    g = torch.Generator().manual_seed(0)
    h, w = 64, 96
    radiance = torch.rand(1, 3, h, w, generator=g) ** 3 * 4
    albedo = torch.rand(1, 3, h, w, generator=g)
    normal = torch.nn.functional.normalize(torch.randn(1, 3, h, w, generator=g), dim=1)
    depth = 1 + torch.rand(1, 1, h, w, generator=g)
    guide = torch.rand(1, 3, h, w, generator=g)  # stands in for OIDN's image
    ins = (radiance, albedo, normal, depth)
    for cpu_net, gpu_net in zip(load_denoisers(DENOISER), load_denoisers(DENOISER, "cuda"),
                                strict=True):  # fmt: skip
        if cpu_net is None:
            continue
        extra = {"guide": guide} if getattr(cpu_net.cfg, "oidn", False) else {}
        with torch.no_grad():
            ref, state = cpu_net(*ins, spp=4, **extra)
            ref2, _ = cpu_net(*ins, state, spp=8, **extra)
            g_extra = {k: v.cuda() for k, v in extra.items()}
            out, g_state = gpu_net(*(x.cuda() for x in ins), spp=4, **g_extra)
            out2, _ = gpu_net(*(x.cuda() for x in ins), g_state, spp=8, **g_extra)
        for a, b in ((ref, out), (ref2, out2)):
            assert torch.allclose(b.cpu(), a, rtol=2e-3, atol=2e-3), (b.cpu() - a).abs().max()


@cuda
def test_hologan_on_cuda_matches_the_cpu():
    from engine.latent.hologan import latent_from_seed
    from engine.latent.render import LatentOptions, LatentRenderer
    from engine.latent.train import load_generator

    opts = LatentOptions(latent_from_seed(0, 1), latent_from_seed(1, 1), azimuth=30.0)
    frames = []
    for dev in ("cpu", "cuda"):
        r = LatentRenderer(load_generator(HOLOGAN, dev), dev)
        opts.z1 = latent_from_seed(0, r.cfg.z1)
        opts.z2 = latent_from_seed(1, r.cfg.z2)
        frames.append(r.render(None, opts).image.astype(int))
    diff = np.abs(frames[0] - frames[1])
    assert diff.mean() < 0.5 and diff.max() <= 8, (diff.mean(), diff.max())
