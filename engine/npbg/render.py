"""Render modes for a neural point scene: the NPBG image, a descriptor view, and a wipe
comparison against splatting or the nearest photo."""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np
import torch

from engine.camera import Camera
from engine.device import cpu_bf16
from engine.frame import GAUSSIANS_LABEL, Frame
from engine.npbg.cuda import CudaNetworks
from engine.npbg.model import PASS_SHIFTS, NeuralPointModel
from engine.npbg.network import Bf16Networks
from engine.npbg.ort import OrtNetworks, run_session
from engine.points.rasterize import gather_features, rasterize_points
from engine.points.render import BACKGROUND, PointCloudRenderer, PointRenderOptions
from engine.points.shading import to_uint8

NEURAL_MODES = ("neural", "descriptors", "compare")
# A view is drawn at most at the resolution shown (NeuralPointModel.render's supersample): a
# window coarser than the fit's scale is drawn as asked, so a frame never costs more than it did.
VIEWER_SUPERSAMPLE = 1.0


@dataclass
class NeuralRenderOptions:
    """mode: 'neural', 'descriptors' (first three PCA components of the visible descriptors as
    RGB), or 'compare' (neural left of ``wipe``, ``compare_with`` on the right: 'splat' or
    'photo', the registered photo nearest to the camera); preview: render with the model's
    fast preview network (engine.npbg.distill) if it has one."""

    mode: str = "neural"
    wipe: float = 0.5
    compare_with: str = "splat"
    point_size: int = 2  # for the splatting side of the comparison
    preview: bool = False  # the camera moves: the fast preview network, when the model has one


class NeuralRenderer:
    """Renders a NeuralPointModel (which a fitter may be training at the same time)."""

    def __init__(
        self, model: NeuralPointModel, splat: PointCloudRenderer | None = None, views=None
    ) -> None:
        self.model = model
        self.device = model.points.device
        self.num_points = int(model.points.shape[0])
        self.splat = splat
        self.views = views or []  # RegisteredView list, for the photo comparison
        self._photo_cache: dict[str, np.ndarray] = {}
        self.ort = OrtNetworks()  # ONNX Runtime sessions of the networks, for CPU viewing
        self.cuda = CudaNetworks()  # half precision and CUDA graphs, for CUDA viewing
        self.bf16_nets = Bf16Networks()  # bf16 copies of the networks, for CPU viewing
        self._bf16_desc: tuple | None = None  # ((id, version), bf16 descriptors)
        self._passes: _Passes | None = None  # the still view's offset passes so far
        # A CPU with native bfloat16 (AVX-512 BF16, AMX) runs the networks fastest in PyTorch
        # with bf16 convolutions: on the 2-core EPYC at 454x572 the preview network takes 54
        # instead of 78 ms (ONNX Runtime, fp32) and the full one 169 instead of 233, matching
        # fp32 to 60 dB. Elsewhere oneDNN emulates bf16 (slower than fp32): ONNX Runtime.
        self.bf16 = self.device.type == "cpu" and cpu_bf16()
        if self.bf16:
            self.ort.enabled = False
        # Both sessions now, in the background: building one takes the GIL for ~0.5 s, which
        # in the middle of the first drag would stall it.
        for net in (model.net, model.preview):
            if net is not None:
                self.ort.get(net, model.lock)

    @property
    def has_preview(self) -> bool:
        """The model has a fast preview network for moving frames (engine.npbg.distill)."""
        return self.model.preview is not None

    @torch.no_grad()
    def render(
        self, camera: Camera, opts: NeuralRenderOptions | PointRenderOptions | None = None
    ) -> Frame:
        opts = (
            opts
            if isinstance(opts, NeuralRenderOptions)
            else NeuralRenderOptions(
                getattr(opts, "mode", "neural")
                if getattr(opts, "mode", "") in NEURAL_MODES
                else "neural"
            )
        )
        t0 = time.perf_counter()
        info = {}
        if opts.mode == "descriptors":
            rgb = self._descriptor_image(camera)
        else:
            rgb, passes, drew = self._still_image(camera) if not opts.preview else (None, 0, 0)
            if rgb is None:
                rgb = self._neural_image(camera, opts.preview)
            if passes:  # a still view: one more offset pass each frame, up to PASS_SHIFTS
                info["passes"] = passes
                info["progressive"] = passes < len(PASS_SHIFTS)
        img = to_uint8(rgb).cpu().numpy()
        if opts.preview and self.has_preview and opts.mode != "descriptors":
            info["network"] = "preview"  # the viewer's cost model keeps it apart
        if opts.mode != "descriptors":
            info["runtime"] = self._runtime  # torch / onnxruntime / cuda fp16 graph ...
            drawn = self.model.fit_camera(camera, VIEWER_SUPERSAMPLE)
            if drawn is not camera:
                info["drawn_size"] = (drawn.width, drawn.height)
        if opts.mode == "compare":
            other, label = self._comparison(camera, opts)
            x = round(float(np.clip(opts.wipe, 0, 1)) * camera.width)
            if other is not None:  # else the viewer draws the right side (Gaussian splats)
                img[:, x:] = other[:, x:]
            if 0 < x < camera.width:
                img[:, max(0, x - 1) : x + 1] = 255  # the wipe line
            info["compare_with"] = label
        ms = (time.perf_counter() - t0) * 1000
        if info.get("passes"):
            # A view whose passes are all done is shown again without drawing: the cost it
            # reports is its last pass's, which the viewer's frame-cost model learns from.
            ms = self._passes.last_ms = ms if drew else self._passes.last_ms
        return Frame(img, camera, ms, self.num_points, self.device.type, **info)

    def _still_image(self, camera: Camera) -> tuple[torch.Tensor | None, int, bool]:
        """(H, W, 3) the mean of this camera's offset passes so far with one more added (none
        once PASS_SHIFTS are done), how many, and whether one was added; (None, 0, False)
        while a fit trains the model (its weights change every step: each frame is its own)."""
        with self.model.lock:
            if self.model.training:
                self._passes = None
                return None, 0, False
            key = (camera.width, camera.height, camera.fx, camera.fy, camera.cx, camera.cy,
                   camera.world_to_camera.tobytes(), id(self.model.descriptors),
                   self.model.descriptors._version)  # fmt: skip
            acc = self._passes if self._passes is not None and self._passes.key == key else None
            if acc is None:
                acc = self._passes = _Passes(key)
            drew = acc.count < len(PASS_SHIFTS)
            if drew:
                img = self._neural_image(camera, shift=PASS_SHIFTS[acc.count]).float()
                acc.total = img if acc.total is None else acc.total + img
                acc.count += 1
            return acc.total / acc.count, acc.count, drew

    def _neural_image(
        self, camera: Camera, preview: bool = False, shift: tuple[float, float] = (0.0, 0.0)
    ) -> torch.Tensor:
        with self.model.lock:
            was_training = self.model.training  # a fit trains this model on another thread
            self.model.eval()
            # On the CPU bf16 where it is native, else ONNX Runtime once its session for these
            # weights is ready (engine.npbg.ort); on CUDA half precision and graphs
            # (engine.npbg.cuda), recording none during a fit.
            self._runtime = "torch"
            # At the scale the model was fitted at, enlarged when the view is finer (sharper
            # and cheaper than drawing it finer).
            out = self.model.render(
                camera,
                preview,
                lambda net, levels: self._run_net(net, levels, not was_training),
                self._viewing_descriptors(),
                supersample=VIEWER_SUPERSAMPLE,
                shift=shift,
            )
            self.model.train(was_training)
        return out.permute(1, 2, 0).clamp(0, 1)

    def _viewing_descriptors(self) -> torch.Tensor | None:
        """The descriptors in bfloat16 when the networks run in it (the first convolution
        rounds them to bf16 anyway, so the picture is the same): gathering half the bytes per
        pixel. Copied again when a fit has changed them (their version counter)."""
        if not self.bf16:  # (only ever set on a CPU)
            return None
        d = self.model.descriptors
        key = (id(d), d._version)
        if self._bf16_desc is None or self._bf16_desc[0] != key:
            self._bf16_desc = (key, d.detach().to(torch.bfloat16))
        return self._bf16_desc[1]

    def _run_net(self, net, levels: list[torch.Tensor], capture: bool) -> torch.Tensor | None:
        if levels[0].device.type == "cuda":
            out = self.cuda.run(net, levels, capture)
            self._runtime = self.cuda.label
            return out
        if self.bf16 and levels[0].device.type == "cpu":
            self._runtime = "torch bf16"
            return self.bf16_nets.run(net, levels)
        session = self.ort.get(net, self.model.lock)
        self._runtime = "torch" if session is None else "onnxruntime"
        return None if session is None else run_session(session, levels)

    def _descriptor_image(self, camera: Camera) -> torch.Tensor:
        with self.model.lock:
            desc = self.model.descriptors.detach().clone()
        (r,) = rasterize_points(self.model.points, camera, self.model.point_size)
        feats = gather_features(desc, r).permute(1, 2, 0)  # (H, W, D)
        vis = feats[r.mask]
        out = torch.full((*r.index.shape, 3), BACKGROUND, device=desc.device)
        if vis.shape[0] < 3:
            return out
        mean = vis.mean(0)
        # Principal directions of the visible descriptors: the 3 strongest become R, G, B.
        _, _, v = torch.linalg.svd(vis - mean, full_matrices=False)
        proj = (vis - mean) @ v[:3].T
        lo, hi = torch.quantile(proj, 0.02, dim=0), torch.quantile(proj, 0.98, dim=0)
        out[r.mask] = ((proj - lo) / (hi - lo).clamp(min=1e-6)).clamp(0, 1)
        return out

    def _comparison(self, camera: Camera, opts: NeuralRenderOptions) -> tuple[np.ndarray, str]:
        if opts.compare_with == "gaussians":
            return None, GAUSSIANS_LABEL  # drawn by the viewer's OpenGL over the right side
        if opts.compare_with == "photo" and self.views:
            view = nearest_view(self.views, camera)
            if view is not None and view.has_image:
                return self._photo(view, camera.width, camera.height), f"photo {view.name}"
        if self.splat is not None:
            f = self.splat.render(camera, PointRenderOptions("color", opts.point_size))
            return f.image, "splatting"
        return np.full((camera.height, camera.width, 3), 0, np.uint8), "none"

    def _photo(self, view, w: int, h: int) -> np.ndarray:
        key = f"{view.name}:{w}x{h}"
        if key not in self._photo_cache:
            from engine.images import read_image, resize_image

            img = resize_image(read_image(view.image_path), w, h)
            self._photo_cache = {key: (img.permute(1, 2, 0).numpy() * 255 + 0.5).astype(np.uint8)}
        return self._photo_cache[key]


@dataclass
class _Passes:
    """A still view's offset passes (NeuralPointModel.render's ``shift``) summed so far."""

    key: tuple
    total: torch.Tensor | None = None
    count: int = 0
    last_ms: float = 0.0  # what drawing its last pass cost


def nearest_view(views, camera: Camera):
    """The registered view closest to ``camera`` (position, then viewing direction)."""
    if not views:
        return None
    best, best_d = None, np.inf
    scale = max(np.linalg.norm(v.camera.position - camera.position) for v in views) + 1e-9
    for v in views:
        d = np.linalg.norm(v.camera.position - camera.position) / scale
        d += 1.0 - float(np.dot(v.camera.forward, camera.forward))
        if d < best_d:
            best, best_d = v, d
    return best
