"""Progressive rendering: 1-spp frames accumulate while the camera is still, reset on motion."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from engine.camera import Camera
from engine.denoise.oidn import available as oidn_available
from engine.denoise.oidn import denoise_hwc
from engine.frame import ErrorPoint, Frame
from engine.images import linear_to_srgb
from engine.mitsuba_scene import MitsubaScene

PATHTRACE_VIEWS = ("color", "albedo", "normal", "depth", "reference")


@dataclass
class PathTraceOptions:
    """view: which buffer to show (PATHTRACE_VIEWS); max_spp: stop accumulating here;
    exposure: stops applied before tone mapping."""

    view: str = "color"
    max_spp: int = 1024
    exposure: float = 0.0
    denoise: bool = False  # denoise the current estimate with ``denoiser``
    denoiser: str = "ours"  # one of DENOISERS
    split: bool = False  # noisy | denoised (| reference when one is rendered)
    wipe: float = 0.5  # split: where the noisy part ends, as a fraction (0.5: even panes)
    reference_spp: int = 0  # > 0: render a reference of this many spp and report errors
    # > 0: a moving camera will be drawn at this scale of a still view's size; the film for
    # it is prepared after a still view's first sample, so the first move does not stall.
    moving_scale: float = 0.0
    # A moving frame's time budget (the viewer's target): the main denoiser (OIDN-guided, far
    # better than the fast one) also denoises the moving frames when, at their size, it takes
    # at most half of it; else the fast model does.
    frame_budget_ms: float = 40.0


# PathTraceOptions.denoiser -> what the viewer calls it: the bundled temporal denoisers, Intel
# Open Image Denoise on each frame (the per-frame baseline every renderer ships), or both side
# by side at the wipe (ours left, OIDN right).
def to_display(rgb_linear: np.ndarray, exposure: float = 0.0) -> np.ndarray:
    """(H, W, 3) linear radiance -> (H, W, 3) uint8 sRGB."""
    return (linear_to_srgb(rgb_linear * 2.0**exposure) * 255 + 0.5).astype(np.uint8)


def split_panes(views: list[np.ndarray], wipe: float) -> np.ndarray:
    """(H, W, 3) uint8 images side by side, each showing its own part of the frame: two split
    at ``wipe`` (a fraction of the width), three as [wipe-scaled two thirds | a third | rest];
    white lines mark the cuts."""
    image = views[-1].copy()
    W = image.shape[1]
    w = min(max(wipe, 0.0), 1.0)
    if len(views) == 1:
        return image
    if len(views) == 2:
        cuts = [min(W - 1, int(w * W))]
    else:
        c1 = int(w * W * 2 / 3)
        cuts = [c1, min(W - 1, c1 + W // 3)]
    start = 0
    for v, c in zip(views[:-1], cuts, strict=True):
        image[:, start:c] = v[:, start:c]
        start = c
    for c in cuts:
        image[:, c] = 255
    return image


def denoise_due(spp: int) -> bool:
    """Whether a still view accumulating samples is denoised again at ``spp``: every sample up
    to 15 spp, then about 8 times per doubling (every 2nd from 16, every 4th from 32, ...). The
    denoised image changes slowly there, and the OIDN-guided denoiser costs several samples'
    time: denoising every sample would slow convergence threefold."""
    return spp % max(1, 2 ** (spp.bit_length() - 4)) == 0


class ProgressiveRenderer:
    """Path traces one sample per pixel per call and keeps running means of every buffer.

    The accumulation restarts whenever the camera (pose, intrinsics or size) changes, so a
    moving camera shows fresh 1-spp frames and a still one converges. the Frame carries
    'spp' and 'progressive' (True while more samples would still be added).
    """

    def __init__(self, scene: MitsubaScene, denoiser=None, fast_denoiser=None) -> None:
        self.scene = scene
        self.denoiser = denoiser  # KernelDenoiser / RecurrentDenoiser or None
        # Used for fresh 1-spp frames (a moving camera) when given: the main model's quality
        # costs time a moving view does not have (both carry the same state).
        self.fast_denoiser = fast_denoiser
        self._dn_used = None  # the model that denoised the last frame
        self._clean = None  # (view key, spp, image) of the last denoised estimate
        # OIDN preset ("high": the viewer's comparison, "fast": a guide) -> (view key, spp,
        # image): OIDN's output for an estimate
        self._oidn: dict[str, tuple] = {}
        # The denoiser's state, carried (and reprojected) from frame to frame.
        self._temporal = None
        if denoiser is not None:
            from engine.denoise.temporal import TemporalDenoiser

            self._temporal = TemporalDenoiser(denoiser)
        self.reference: np.ndarray | None = None  # (H, W, 3) linear, for self._ref_key
        self._ref_key = None
        self.device = scene.variant
        self.num_points = 0
        self._key = None
        self._epoch = 0
        self.spp = 0
        self._prepared: set[tuple[int, int]] = set()  # moving film sizes built (see moving_scale)
        self._dn_warm: set[tuple[int, int]] = set()  # sizes the moving denoiser has run at
        # Moving-frame sizes whose fresh frames the main denoiser can afford (measured there).
        self._main_moving: set[tuple[int, int]] = set()
        # Set by a render worker: True while a newer request waits, so long optional stages
        # (denoising) of a frame that is already stale can be skipped.
        self.superseded: Callable[[], bool] | None = None
        self.mean: dict[str, np.ndarray] = {}

    def reset(self) -> None:
        """Forget accumulated samples and the denoiser's hidden state (e.g. new scene)."""
        self._key = None
        self._clean = None
        self._oidn = {}
        if self._temporal is not None:
            self._temporal.reset()

    def _camera_key(self, c: Camera):
        return (
            c.world_to_camera.round(9).tobytes(),
            c.width,
            c.height,
            round(c.fx, 6),
            round(c.fy, 6),
            round(c.cx, 6),
            round(c.cy, 6),
        )

    def render(self, camera: Camera, opts: PathTraceOptions | None = None) -> Frame:
        opts = opts or PathTraceOptions()
        t0 = time.perf_counter()
        build0 = self.scene.build_ms
        key = self._camera_key(camera)
        if key != self._key:
            self._key, self.spp, self.mean = key, 0, {}
            self._epoch += 1
        if self.spp < opts.max_spp:
            # A distinct seed per sample and per camera epoch keeps samples independent.
            f = self.scene.render(camera, 1, seed=self._epoch * 1_000_003 + self.spp)
            n = self.spp + 1
            for name in ("radiance", "albedo", "normal", "depth"):
                x = getattr(f, name)
                self.mean[name] = (
                    x.copy() if n == 1 else self.mean[name] + (x - self.mean[name]) / n
                )
            self.spp = n
        if self.spp >= 2 and opts.moving_scale > 0:
            # On a still view (from its 2nd sample), once per size: the moving frames' film,
            # and the denoiser at that size when it is on (toggling it changes the size).
            self._prepare_moving(camera, opts.moving_scale)
            if opts.denoise:
                self._warm_moving_denoiser(camera.scaled(opts.moving_scale), opts.frame_budget_ms)
        if opts.reference_spp > 0 and self._ref_key != key:
            # Rendered once per view, in this (worker) thread: the GUI never waits for it.
            self.reference = self.scene.render(
                camera, opts.reference_spp, seed=987_654_321
            ).radiance
            self._ref_key = key
        has_ref = self.reference is not None and self._ref_key == key
        clean = oidn = None
        if opts.denoise and opts.view == "color":
            final = self.spp >= opts.max_spp
            if opts.denoiser in ("ours", "compare") and self.denoiser is not None:
                clean, run = self._standing(self._clean, key, final)
                if run:
                    # Fresh frames (a moving camera) get the fast model unless the main one
                    # fits the frame budget at this size.
                    size = (camera.width, camera.height)
                    fast = self.spp <= 1 and size not in self._main_moving
                    clean = self.denoise_current(camera, fast=fast)
                    self._clean = (key, self.spp, clean)
            if opts.denoiser in ("oidn", "compare") and oidn_available():
                oidn, run = self._standing(self._oidn.get("high"), key, final)
                if run:
                    oidn = self.oidn_current()
        if opts.denoiser == "compare" and clean is not None and oidn is not None:
            panes = [clean, oidn]  # ours | OIDN
        else:
            shown = oidn if opts.denoiser == "oidn" else clean if clean is not None else oidn
            panes = [shown] if shown is not None else []
            if panes and opts.split:
                panes.insert(0, None)  # noisy | denoised
        denoised = bool(panes)
        if denoised:
            if len(panes) > 1 and has_ref:
                panes.append(self.reference)
            views = [
                self.display(opts) if p is None else to_display(p, opts.exposure) for p in panes
            ]
            image = split_panes(views, opts.wipe)
        elif opts.view == "reference" and has_ref:
            image = to_display(self.reference, opts.exposure)
        else:
            image = self.display(opts)
        ms = (time.perf_counter() - t0) * 1000
        info = {
            "spp": self.spp,
            "progressive": self.spp < opts.max_spp,
            "variant": self.scene.variant,
            "denoised": denoised,
            "denoiser": self._label(clean, oidn) if denoised else "",
            "build_ms": self.scene.build_ms - build0,  # a new film size: not per-frame cost
        }
        if has_ref:
            from engine.metrics import rel_mse

            # OIDN's error too when its image exists for this estimate (shown, or the guided
            # model's guide): the plot compares ours against it at no extra cost.
            versus = oidn
            high = self._oidn.get("high")
            if versus is None and high is not None and high[:2] == (key, self.spp):
                versus = high[2]

            info["error"] = ErrorPoint(
                spp=self.spp,
                noisy=rel_mse(self.mean["radiance"], self.reference),
                denoised=None if clean is None else rel_mse(clean, self.reference),
                oidn=None if versus is None else rel_mse(versus, self.reference),
            )
        return Frame(image, camera, ms, 0, self.scene.variant, **info)

    def _standing(self, last, key, final: bool):
        """Whether a denoised result must be computed for this frame: (image, False) when the
        cached (view key, spp, image) ``last`` stands for it - between the counts where
        ``denoise_due`` says to denoise again, or when a still view's frame is already stale (a
        newer request waits, the camera moved on: the time would only delay the next frame;
        fresh 1-spp frames of a moving camera are always denoised) - else (None, True)."""
        same = last is not None and last[0] == key
        if same and (last[1] == self.spp or not (denoise_due(self.spp) or final)):
            return last[2], False
        if self.spp > 1 and self.superseded is not None and self.superseded():
            return (last[2] if same else None), False
        return None, True

    def _label(self, clean, oidn) -> str:
        net = self._dn_used
        ours = getattr(net, "label", "ours")
        if clean is not None and getattr(net.cfg, "oidn", False):
            quality = net.guide_quality(self._clean[1])  # at the spp ``clean`` was made at
            ours += "" if quality == "high" else f" ({quality})"  # OIDN's preset of the guide
        if clean is not None and oidn is not None:
            return f"{ours} | Intel OIDN"
        return ours if clean is not None else "Intel OIDN"

    def oidn_current(self, quality: str = "high") -> np.ndarray:
        """Intel OIDN's output for the current estimate (H, W, 3) linear at ``quality``,
        computed once per view and sample count: a guided model's guide at high quality and
        the viewer's comparison (always high) are the same image."""
        key = (self._key, self.spp)
        last = self._oidn.get(quality)
        if last is None or last[:2] != key:
            m = self.mean
            image = denoise_hwc(m["radiance"], m["albedo"], m["normal"], quality)
            last = self._oidn[quality] = (*key, image)
        return last[2]

    def _prepare_moving(self, camera: Camera, scale: float) -> None:
        """Builds the film for moving frames of this view's size and switches back once
        (throwaway samples): a JIT variant compiles for both switches, ~0.7 s each on a 2-core
        CPU, which would otherwise be the first two frames of the first drag."""
        small = camera.scaled(scale)
        if (small.width, small.height) in self._prepared or (small.width, small.height) == (
            camera.width, camera.height
        ):  # fmt: skip
            return
        self._prepared.add((small.width, small.height))
        self.scene.render(small, 1, seed=0)
        self.scene.render(camera, 1, seed=0)

    def _warm_moving_denoiser(self, small: Camera, budget_ms: float) -> None:
        """Runs the moving frames' denoisers once at their size on a still view (throwaway,
        state untouched): a first call at a new size sets up the convolutions (~0.2 s on a
        2-core CPU), which would otherwise be the first frame of the next drag. Then times the
        main model there (OIDN included): when it takes at most half of ``budget_ms`` it
        denoises the moving frames too (on a fast CPU or a GPU: OIDN-guided quality while
        flying), else the fast model does."""
        size = (small.width, small.height)
        if self.denoiser is None or size in self._dn_warm:
            return
        self._dn_warm.add(size)
        import torch

        from engine.denoise.model import pad_to

        def call(net, state=None):
            """One throwaway frame of zeros through ``net``, with a warped ``state`` when given
            (as every frame of a drag after the first); returns its (state, ms)."""
            dev = next(net.parameters()).device
            z = pad_to(torch.zeros(1, 3, small.height, small.width, device=dev), net.multiple)
            depth = z[:, :1] + 1.0
            motion = (torch.zeros(*z.shape[:1], *z.shape[2:], 2, device=dev), depth)
            warp = motion if state is not None and net.cfg.reproject else None
            t0 = time.perf_counter()
            with torch.no_grad():
                _, out = net(z, z + 0.5, z, depth, state, warp, spp=1)
            if dev.type == "cuda":
                torch.cuda.synchronize(dev)
            return out, (time.perf_counter() - t0) * 1000

        # Each model stateless, then with a state: that sets up what the stateless call skips
        # (the guided model's network).
        if self.fast_denoiser is not None:
            call(self.fast_denoiser, call(self.fast_denoiser)[0])
        state = call(self.denoiser)[0]
        call(self.denoiser, state)
        if self.fast_denoiser is not None:
            main_ms = min(call(self.denoiser, state)[1] for _ in range(2))
            if main_ms <= 0.5 * budget_ms:
                self._main_moving.add(size)

    def denoise_frame(self, frame, spp: int, camera: Camera) -> np.ndarray:
        """Denoise a finished ``spp``-sample AOVFrame of ``camera`` (a flight rendered frame by
        frame), carrying the denoiser's state from the previous call. (H, W, 3) linear."""
        self.mean = {k: getattr(frame, k) for k in ("radiance", "albedo", "normal", "depth")}
        self.spp = spp
        self._oidn = {}  # a new estimate, whatever its spp
        return self.denoise_current(camera)

    def denoise_current(self, camera: Camera | None = None, fast: bool = False) -> np.ndarray:
        """Denoise the current estimate, updating the recurrent state. (H, W, 3) linear.
        ``camera``: this frame's camera, to reproject the state of models that warp it;
        ``fast``: with the fast denoiser when there is one."""
        m = self.mean
        net = self.fast_denoiser if fast and self.fast_denoiser is not None else self.denoiser
        self._dn_used = net
        # A guided model's OIDN pass at high quality is the one the viewer compares against:
        # computed once.
        guided = getattr(net.cfg, "oidn", False)
        guide = self.oidn_current(net.guide_quality(self.spp)) if guided else None
        return self._temporal(m["radiance"], m["albedo"], m["normal"], m["depth"], camera,
                              self.spp, guide=guide, net=net)  # fmt: skip

    @property
    def denoiser_state(self) -> list | None:
        """The denoiser's recurrent state (None before the first denoised frame)."""
        return None if self._temporal is None else self._temporal.state

    def display(self, opts: PathTraceOptions) -> np.ndarray:
        m = self.mean
        if opts.view == "albedo":
            return to_display(m["albedo"])
        if opts.view == "normal":
            n = m["normal"]
            return (
                (np.clip(n * 0.5 + 0.5, 0, 1) * (np.abs(n).sum(-1, keepdims=True) > 0)) * 255 + 0.5
            ).astype(np.uint8)
        if opts.view == "depth":
            d = m["depth"]
            valid = d > 0
            out = np.zeros((*d.shape, 3), np.uint8)
            if valid.any():
                lo, hi = d[valid].min(), d[valid].max()
                t = 1 - (d - lo) / max(hi - lo, 1e-9)
                out[valid] = (np.repeat(t[valid, None], 3, 1) * 255).astype(np.uint8)
            return out
        return to_display(m["radiance"], opts.exposure)
