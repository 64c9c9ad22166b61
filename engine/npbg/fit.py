"""Fitting descriptors and the rendering network to photos, with atomic checkpoints and resume.

One :class:`Fitter` handles both stages of the NPBG protocol: pretraining the network across
several scenes (each with its own descriptors), and fitting one scene (descriptors, optionally
fine-tuning a pretrained network). Loss: (1 - w) * L1 + w * (1 - SSIM), w = 0.2 by default:
the paper's VGG perceptual loss needs pretrained VGG weights we cannot download here; SSIM is
the structural term that needs none.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from safetensors.torch import load_file

from engine.device import cpu_bf16
from engine.errors import NsvError
from engine.metrics import psnr, ssim, ssim_map
from engine.npbg.data import View, ViewSet
from engine.npbg.model import NeuralPointModel, environment_radii, environment_sphere
from engine.npbg.network import bf16_runner
from engine.npbg.photometric import PhotoCalibration
from engine.points.cull import PhotoCull
from engine.points.rasterize import gather_features, rasterize_points
from engine.training import History, TrainingConfig, TrainingJob

# The most memory the photo culls of a fit's photos may take (see Fitter._cull); above it every
# crop projects the whole cloud.
CULL_BYTES = 2**30


def times_left(every: int, steps: int, step: int = 0) -> int:
    """How often something done every ``every`` steps (0: never) and once more at the end - an
    evaluation, a checkpoint - happens after ``step`` in a run of ``steps`` (a bound: a last
    step that is a multiple of ``every`` counts twice)."""
    return (steps // every - step // every if every else 0) + 1


@dataclass
class FitConfig(TrainingConfig):
    # 7,000 steps of the fit's own network (engine.npbg.network.FIT_NETWORK) fit the 20-minute
    # import + fit budget on the 2-core CPU, wall clock (session 25: one convolution a block and
    # crops that project only their own points made a step ~1.3x cheaper; session 24's 5,500
    # steps of the two-convolution network: stitch_toy 28.42 dB / SSIM 0.897 in 19.1 min).
    steps: int = 7000
    crop: int = 256
    # Crops are scaled by a random factor in this range. 0.9-1.1 scores higher at the photos'
    # own 512 px (stitch_toy 28.52 dB / SSIM 0.896 against 28.42 / 0.895) but lower nearer and
    # farther: at 400 px 28.00 / 0.884 against 28.32 / 0.894, at 640 27.62 / 0.884 against
    # 27.81 / 0.887 (session 23). A viewer flies at every distance, so the range stays.
    scale_min: float = 0.75
    scale_max: float = 1.25
    lr_descriptors: float = 0.05
    lr_network: float = 1e-3
    # The SSIM term's share of the loss (the rest is L1). 0.5 rather than 3DGS's 0.2: held-out
    # stitch_toy 28.16 dB / SSIM 0.891 against 28.09 / 0.886, the room 30.56 / 0.950 against
    # 30.04 / 0.944 (session 21, with the gain fields); 0.7: stitch_toy 28.33 / 0.8976 against
    # 28.42 / 0.8966 (session 25, 5,500 steps).
    ssim_weight: float = 0.7
    train_network: bool = True
    max_side: int = 512
    holdout_every: int = 8
    # An evaluation of stitch_toy's 14 held-out views takes 2.2-2.8 s: every 500 steps was
    # half a minute of a 16-minute fit, most of what the 20-minute budget has to spare
    # (session 25; every 250 before session 23). Evaluations take no part in training (a
    # test); two 7,000-step fits 0.015 dB apart (28.72 / 28.70) differed in their schedule:
    # the time budget's first reading had set 6,927 steps until its second, at step 1,000.
    eval_every: int = 1000
    # A checkpoint (1,000,000 points: ~200 MB of descriptors and their Adam moments, written
    # atomically) took ~1.2 s: every 250 steps (the training default) half a minute of a fit.
    # Every 1,000 steps is every ~2.5 min of work at risk.
    checkpoint_every: int = 1000
    batch: int = 1  # crops per step (split over the processes under torchrun)
    photometric: bool = True  # per-photo exposure / white balance (engine.npbg.photometric)
    environment: bool = True  # learn descriptors for pixels no point covers (NeuralPointModel)
    # Its rows (latitude; twice as many columns): 64 paints the room around a 360-degree
    # capture's object visibly better than 16 (stitch_toy +0.4 dB, colour bias 2.5 vs 3.8/255).
    environment_rows: int = 64
    # The map on a sphere about the cameras at the far points' distance instead of at infinity:
    # from stitch_toy's photos a third of each picture (the room) is mostly this map, even at
    # 1/16 resolution, and walls 20-30 units away shift by ~9 degrees across its 4-unit orbit.
    environment_sphere: bool = True
    # ... and at each direction's own distance (the far points' there): a room is not a sphere.
    environment_shape: bool = True
    lr_photometric: float = 0.01
    # Rows (and columns) of each photo's smooth log-gain field, measured once the scene is
    # fitted (engine.npbg.photometric); 0 = off. A phone's local tone mapping and vignetting.
    photo_field: int = 8
    # Every learning rate decays to 0 along a cosine over the run: held-out stitch_toy 24.54 dB
    # / colour bias 1.7 vs 23.97 / 2.9 with constant rates (same import, 2,000 steps).
    lr_decay: bool = True
    # Every N steps, align each training photo's camera to the current rendering
    # (engine.npbg.pose); 0 = off. Corrections are small and the points stay fixed.
    pose_every: int = 0
    # The fit's steps end within this many minutes of its own clock (TrainingConfig.minutes;
    # 0: exactly ``steps``): 7,000 steps took stitch_toy 15.8 min (import 2.9 min: 19.1 by the
    # wall clock with Python's start and the photos' loading). A capture with slower steps,
    # or a slower hour - this machine's pace drifts 10-20% within one - gets fewer steps
    # rather than a fit past the 20-minute budget (session 25).
    minutes: float = 16.0
    # The network's convolutions in bfloat16 where the CPU computes it natively (AVX-512 BF16,
    # AMX): a 256² step 1.4x faster on the 2-core EPYC. Descriptors, loss and optimizer in fp32.
    bf16: bool = True


@dataclass
class FitTarget:
    """One scene being fitted: its views and its model (the network may be shared)."""

    name: str
    views: ViewSet
    model: NeuralPointModel
    colors: torch.Tensor | None = None  # (N, 3) point colors, for the splatting baseline
    calibration: PhotoCalibration | None = None  # per-photo gains (FitConfig.photometric)


class Fitter(TrainingJob):
    """Fits one or more FitTargets (the network shared between them) on the shared training
    job: learning rates decaying along a cosine (``cfg.lr_decay``), evaluation every
    ``cfg.eval_every`` steps, and ``cfg.batch`` crops per step (split over the processes under
    ``torchrun``)."""

    export_on_checkpoint = False  # the caller exports with the scene's name

    @property
    def cosine_lr(self) -> bool:  # read by TrainingJob
        return self.cfg.lr_decay

    def __init__(self, targets: list[FitTarget], cfg: FitConfig, out_dir: str | Path) -> None:
        if not targets:
            raise ValueError("nothing to fit")
        super().__init__(cfg, out_dir, targets[0].model.points.device)
        self.targets = targets
        self.out_dir = self.out
        self.net = targets[0].model.net
        self.model_cfg = self.net.cfg
        envs = [t.model.environment for t in targets if t.model.environment is not None]
        params = [
            {"params": [t.model.descriptors for t in targets] + envs, "lr": cfg.lr_descriptors}
        ]
        if cfg.photometric:
            for t in targets:
                if t.calibration is None:
                    t.calibration = PhotoCalibration.for_views(t.views.train, cfg.photo_field)
                t.calibration.to(t.model.points.device)
            params.append(
                {"params": [t.calibration.log_gain for t in targets], "lr": cfg.lr_photometric}
            )
        if cfg.train_network:
            params.append({"params": list(self.net.parameters()), "lr": cfg.lr_network})
        else:
            self.net.requires_grad_(False)
        # Fused: one pass over each tensor instead of a dozen (600,000 x 16 descriptors: 16
        # instead of 140 ms a step on the 2-core EPYC, a sixth of the step). The fused kernel
        # leaves the version counters alone, which the viewer's bf16 copies of the network
        # and descriptors are keyed on: train_step bumps them (a live preview follows the fit).
        self.opt = torch.optim.Adam(params, fused=True)
        for t in targets:  # with zero_grad(set_to_none=False) below: see gather_pyramid
            t.model.grad_in_place = True
        self.modules = {
            "net": self.net,
            "descriptors": torch.nn.ParameterList([t.model.descriptors for t in targets]),
        }
        if envs:
            self.modules["environment"] = torch.nn.ParameterList(envs)
        if cfg.photometric:
            self.modules["photometric"] = torch.nn.ModuleList([t.calibration for t in targets])
        self.optimizers = {"": self.opt}
        self.history = History(loss=[], eval_step=[], psnr=[], ssim=[])
        cpu = targets[0].model.points.device.type == "cpu"
        self._runner = bf16_runner if cfg.bf16 and cpu and cpu_bf16() else None
        self.baseline: dict | None = None
        self.pose_corrections: dict[str, float] = {}  # photo -> summed correction, degrees
        # Each training photo's points by image tile (engine.points.cull), built the first time
        # a crop of it is drawn: 4 bytes for each point inside each photo's frame, at most.
        self._photos = {(id(t), v.name): v for t in targets for v in t.views.train}
        worst = sum(len(t.views.train) * t.model.points.shape[0] * 4 for t in targets)
        self._culls: dict[tuple[int, str], PhotoCull] | None = {} if worst <= CULL_BYTES else None

    # --- training ------------------------------------------------------------------------
    def train_step(self) -> dict[str, float]:
        crops = []  # the global batch: every rank draws it, then renders its share
        for _ in range(self.cfg.batch):
            t = self.targets[self.rng.integers(len(self.targets))]
            scale = (self.cfg.scale_min, self.cfg.scale_max)
            crops.append((t, t.views.sample(self.rng, self.cfg.crop, scale)))
        mine = self.shard(crops)
        w = self.cfg.ssim_weight
        loss = 0.0
        for t, view in mine:
            target = view.image.to(t.model.points.device)[None]
            pred = t.model(view.camera, runner=self._runner, cull=self._cull(t, view.name))[None]
            if t.calibration is not None:
                pred = t.calibration.apply(pred, view.camera, view.name, field=False)
            crop_loss = (1 - w) * F.l1_loss(pred, target) + w * (1 - ssim_map(pred, target).mean())
            loss = loss + crop_loss / len(mine)
        # In place: the descriptors' gradient is kept from step to step (grad_in_place).
        self.opt.zero_grad(set_to_none=False)
        loss.backward()
        with self.targets[0].model.lock:
            self.optimizer_step(self.opt)
            for group in self.opt.param_groups:
                for p in group["params"]:
                    torch.autograd.graph.increment_version(p)
        return {"loss": float(loss.detach())}

    def _cull(self, t: FitTarget, name: str) -> PhotoCull | None:
        """The PhotoCull of training photo ``name`` of ``t``, (re)built when its pose changed."""
        if self._culls is None:
            return None
        key = (id(t), name)
        camera = self._photos[key].camera
        cull = self._culls.get(key)
        if cull is None or cull.camera is not camera:  # refine_poses replaces cameras
            cull = self._culls[key] = PhotoCull(t.model.points, camera)
        return cull

    def build_culls(self) -> None:
        """Build every training photo's PhotoCull now rather than when a crop of it is first
        drawn (``nsv bench fit``: a short timing would count their building as steps)."""
        for t in self.targets:
            for v in t.views.train:
                self._cull(t, v.name)

    def after_step(self) -> dict:
        pe = self.cfg.pose_every
        out = {}
        if pe and self.step % pe == 0 and self.step < self._until:
            out = self.refine_poses()
        if self.cfg.photometric and self.cfg.photo_field and self.step == self.cfg.steps:
            self.measure_fields()  # before the final evaluation, which uses them
        return out | self._maybe_evaluate()

    @torch.no_grad()
    def measure_fields(self) -> None:
        """Each training photo's gain field against the fitted scene (PhotoCalibration.
        fit_field): one rendering per photo, at the end of the fit."""
        if not self.is_main:
            return
        n = sum(len(t.views.train) for t in self.targets)
        self.say(f"measuring the gain field across each of the {n} training photos")
        for t in self.targets:
            for v in t.views.train:
                with t.model.lock:  # per view, as evaluate(): a live preview is not held up
                    img = t.model(v.camera, runner=self._runner).clamp(0, 1)
                img = t.calibration.apply(img, v.camera, v.name, field=False)
                t.calibration.fit_field(v.name, img, v.image.to(img.device), v.camera)

    @torch.no_grad()
    def _render_with_depth(self, t: FitTarget, name: str, camera) -> tuple:
        with t.model.lock:
            img = t.model(camera).clamp(0, 1)
        if t.calibration is not None:
            img = t.calibration.apply(img, camera, name)
        (r,) = rasterize_points(t.model.points, camera, t.model.point_size)
        return img, r.depth

    def refine_poses(self) -> dict:
        """One round of pose refinement over every training photo (``cfg.pose_every``).
        Returns the median correction of this round in degrees and in image pixels."""
        from engine.npbg.pose import align_camera

        angles, shifts = [], []
        for t in self.targets:
            pts = t.model.points
            scale = float((pts.amax(0) - pts.amin(0)).norm())
            for v in t.views.train:
                cam, info = align_camera(
                    lambda c, t=t, v=v: self._render_with_depth(t, v.name, c),
                    v.image,
                    v.camera,
                    scale,
                )
                if "skipped" in info:
                    angles.append(0.0)
                    shifts.append(0.0)
                    continue
                v.camera = cam
                self.pose_corrections[v.name] = (
                    self.pose_corrections.get(v.name, 0.0) + info["angle_deg"]
                )
                angles.append(info["angle_deg"])
                shifts.append(info["motion_px"])
        return {"pose_deg": float(np.median(angles)), "pose_px": float(np.median(shifts))}

    @torch.no_grad()
    def budget_reserve(self) -> float:
        """Seconds the rest of the fit spends outside its steps: the evaluations left and the
        gain fields (one rendering per photo each, timed here on one), the checkpoints left
        (~200 MB/s for descriptors and their Adam moments)."""
        t = self.targets[0]
        v = (t.views.test or t.views.train)[0]
        start = time.perf_counter()
        with t.model.lock:
            t.model(v.camera, runner=self._runner)
        render = time.perf_counter() - start
        evals = times_left(self.cfg.eval_every, self.cfg.steps, self.step)
        renders = evals * sum(len(x.views.test) for x in self.targets)
        if self.cfg.photometric and self.cfg.photo_field:
            renders += sum(len(x.views.train) for x in self.targets)
        checkpoints = times_left(self.cfg.checkpoint_every, self.cfg.steps, self.step)
        size = sum(x.model.descriptors.numel() * 4 * 3 for x in self.targets)
        # With a fifth to spare: evaluations also score, the fields fit.
        return 1.2 * (renders * render + checkpoints * size / 200e6)

    def _maybe_evaluate(self) -> dict:
        every = self.cfg.eval_every  # 0: only at the end
        if (not every or self.step % every) and self.step != self._until:
            return {}
        if not self.is_main:
            return {}
        return {f"eval_{k}": v for k, v in self.evaluate().items()}

    @torch.no_grad()
    def evaluate(self) -> dict:
        """Mean PSNR / SSIM of neural renders over every target's held-out views."""
        ps, ss = [], []
        for t in self.targets:
            for v in t.views.test:
                with t.model.lock:  # in bf16 as the steps (where native): ~2x faster
                    pred = t.model(v.camera, runner=self._runner).clamp(0, 1)
                if t.calibration is not None:  # predicted from the nearest training photos
                    pred = t.calibration.apply(pred, v.camera)
                target = v.image.to(pred.device)
                ps.append(psnr(pred, target))
                ss.append(ssim(pred, target))
        if not ps:
            return {}
        res = {"psnr": float(np.mean(ps)), "ssim": float(np.mean(ss)), "views": len(ps)}
        self.last_eval = res
        self.history.eval_step.append(self.step)
        self.history.psnr.append(res["psnr"])
        self.history.ssim.append(res["ssim"])
        return res

    @torch.no_grad()
    def splat_baseline(self) -> dict:
        """Held-out PSNR / SSIM of plain point splatting of the point colors (best splat size of
        1, 2, 4, 8 px; empty pixels filled with the median border color of the training photos,
        i.e. the likely background) for comparison."""
        best = {}
        for size in (1, 2, 4, 8):
            ps, ss = [], []
            for t in self.targets:
                model = t.model
                col = t.colors if t.colors is not None else torch.full_like(model.points, 0.5)
                bg = background_color(t.views.train)
                for v in t.views.test:
                    img = splat_image(model.points, col, v.camera, size, bg)
                    ps.append(psnr(img, v.image.to(img.device)))
                    ss.append(ssim(img, v.image.to(img.device)))
            if ps and (not best or np.mean(ps) > best["psnr"]):
                best = {"psnr": float(np.mean(ps)), "ssim": float(np.mean(ss)), "point_size": size}
        self.baseline = best
        return best

    def run(
        self,
        steps: int | None = None,
        progress: bool = True,
        callback: Callable[[Fitter, dict], None] | None = None,
        stop: threading.Event | None = None,
        pause: threading.Event | None = None,
    ) -> dict:
        """Train until ``steps`` total steps (cfg.steps by default), evaluating and writing
        atomic checkpoints on schedule; returns the last evaluation. ``stop`` ends early (after
        a checkpoint); while ``pause`` is set the loop idles. ``callback(fitter, info)`` runs
        after every step. First, once per run, the splatting baseline to compare with."""
        if self.baseline is None and self.is_main:
            base = self.splat_baseline()
            if base:
                self.say(f"splatting baseline (held-out): PSNR {base['psnr']:.2f} dB, "
                         f"SSIM {base['ssim']:.3f}")  # fmt: skip
        # While it runs the models are in training mode: a renderer drawing one meanwhile (the
        # viewer's live preview) reads that, e.g. to record no CUDA graph mid-fit.
        self._set_training(True)
        try:
            return super().run(progress, stop, steps, pause, callback)
        finally:
            self._set_training(False)

    def _set_training(self, on: bool) -> None:
        for t in self.targets:
            with t.model.lock:
                t.model.train(on)

    # --- checkpoints ---------------------------------------------------------------------
    def extra_state(self) -> dict:
        poses = {
            f"{i}:{v.name}": np.asarray(v.camera.world_to_camera).tolist()
            for i, t in enumerate(self.targets)
            for v in t.views.train
            if v.name in self.pose_corrections
        }
        return {
            "targets": [t.name for t in self.targets],
            "baseline": self.baseline,
            "poses": poses,
            "pose_corrections": self.pose_corrections,
        }

    def load_extra_state(self, state: dict) -> None:
        self.baseline = state.get("baseline")
        self.pose_corrections = dict(state.get("pose_corrections") or {})
        poses = state.get("poses") or {}
        for i, t in enumerate(self.targets):
            for v in t.views.train:
                w2c = poses.get(f"{i}:{v.name}")
                if w2c is not None:  # refined before the interruption
                    v.camera = v.camera.with_pose(np.array(w2c, dtype=np.float64))

    def check_checkpoint(self, ck: Path, state: dict, tensors: dict) -> None:
        if state.get("targets") != [t.name for t in self.targets]:
            raise NsvError(f"{ck}: checkpoint is for {state.get('targets')}, not this scene")
        self._check_compatible(ck, tensors)

    def _check_compatible(self, ck: Path, tensors: dict[str, torch.Tensor]) -> None:
        """Reject a checkpoint whose shapes don't match before anything is loaded."""
        for i, t in enumerate(self.targets):
            d = tensors.get(f"descriptors.{i}")
            want = tuple(t.model.descriptors.shape)
            if d is None or tuple(d.shape) != want:
                got = None if d is None else tuple(d.shape)
                raise NsvError(
                    f"{ck}: checkpoint has descriptors {got}, this scene needs {want} "
                    "(different point cloud or descriptor size)"
                )
        for i, t in enumerate(self.targets):
            env, mine = tensors.get(f"environment.{i}"), t.model.environment
            got = None if env is None else tuple(env.shape)
            want = None if mine is None else tuple(mine.shape)
            if got != want:
                raise NsvError(
                    f"{ck}: checkpoint has an environment map of {got}, this fit makes {want} "
                    "(resume with the run's own --environment-rows / --no-environment)"
                )
        own = self.net.state_dict()
        theirs = {k[4:]: v for k, v in tensors.items() if k.startswith("net.")}
        bad = [k for k in own if k not in theirs or theirs[k].shape != own[k].shape]
        if bad or len(theirs) != len(own):
            raise NsvError(
                f"{ck}: checkpoint network does not match this configuration "
                f"({len(bad)} mismatched tensors, e.g. {bad[:1]})"
            )

    def finish(self, scene_source: str | None = None) -> dict:
        """After a run: evaluate the final state (unless the last evaluation was at this step)
        and write the fitted model. Returns that evaluation ({} without held-out views)."""
        h = self.history
        if self.targets[0].views.test and (not h.eval_step or h.eval_step[-1] != self.step):
            self.evaluate()
        self.export(scene_source)
        return self.last_eval

    def export(self, scene_source: str | None = None) -> Path:
        """Write the fitted model of the first target (the scene being fitted)."""
        t = self.targets[0]
        summary = {
            "steps": self.step,
            "seconds": round(self.seconds, 1),
            "held_out_psnr": self.history.psnr[-1] if self.history.psnr else None,
            "held_out_ssim": self.history.ssim[-1] if self.history.ssim else None,
            "splat_baseline": self.baseline,
            "held_out_views": [v.name for v in t.views.test],
            "pose_corrections_deg": {k: round(v, 3) for k, v in self.pose_corrections.items()},
            "train_views": len(t.views.train),
            "config": asdict(self.cfg),
            "scene": scene_source,
        }
        t.model.save(self.out_dir, summary, t.calibration)
        return self.out_dir


def network_file(path: str | Path) -> Path:
    """The weights file of a pretrained network folder (or the file itself)."""
    path = Path(path)
    if path.is_dir():
        name = "network.safetensors"
        path = path / (name if (path / name).is_file() else "model.safetensors")
    return path


def network_config_of(path: str | Path):
    """The NetworkConfig recorded beside a pretrained network (``network.json`` from
    ``nsv pretrain`` or a fitted scene's ``config.json``), or None when there is none."""
    import json

    from engine.npbg.network import NetworkConfig

    path = network_file(path)
    for name in ("network.json", "config.json"):
        meta = path.parent / name
        if meta.is_file():
            try:
                return NetworkConfig(**json.loads(meta.read_text())["network"])
            except Exception:
                raise NsvError(f"{meta}: not a network description") from None
    return None


def load_network(path: str | Path):
    """A RenderingNetwork built from the description beside ``path`` (``network_config_of``)
    with its weights loaded (``nsv pretrain`` / ``nsv fit`` output)."""
    from engine.npbg.network import NetworkConfig, RenderingNetwork

    net = RenderingNetwork(network_config_of(path) or NetworkConfig())
    try:
        net.load_state_dict(_network_state(path))
    except Exception:
        raise NsvError(f"{network_file(path)}: the weights do not match the network "
                       "described beside them") from None  # fmt: skip
    return net


def _network_state(path: str | Path) -> dict:
    path = network_file(path)
    try:
        tensors = load_file(str(path))
    except FileNotFoundError:
        raise NsvError(f"{path}: no such network file") from None
    except Exception:
        raise NsvError(f"{path}: not a safetensors weights file") from None
    return {k[4:]: v for k, v in tensors.items() if k.startswith("net.")}


def load_network_weights(model: NeuralPointModel, path: str | Path) -> None:
    """Load a pretrained rendering network (``network.safetensors`` from ``nsv pretrain``, or a
    fitted scene's ``model.safetensors``) into ``model``."""
    state = _network_state(path)
    try:
        model.net.load_state_dict(state)
    except Exception:
        raise NsvError(f"{network_file(path)}: cannot load network weights: they were made for "
                       "another network layout") from None  # fmt: skip


def make_target(
    scene, cfg: FitConfig, net=None, device="cpu", name: str | None = None, net_cfg=None
) -> FitTarget:
    """A FitTarget for a loaded Scene: views split, descriptors initialised from colors."""

    views = ViewSet(scene, cfg.max_side, cfg.holdout_every)
    sphere = radii = None
    if cfg.environment and cfg.environment_sphere:
        positions = np.stack([v.camera.position for v in views.train])
        sphere = environment_sphere(scene.points, positions)
        if cfg.environment_shape and sphere[1] > 0:
            radii = environment_radii(scene.points, *sphere, positions, cfg.environment_rows)
    model = NeuralPointModel.create(
        scene.points, scene.colors, net_cfg, seed=cfg.seed, environment=cfg.environment,
        env_rows=cfg.environment_rows, env_sphere=sphere, env_radii=radii,
    )  # fmt: skip
    if net is not None:  # pretraining: the scenes share one network
        model.net = net
    model.fit_focal = views.focal  # the scale it is drawn at (NeuralPointModel.render)
    model = model.to(device)
    colors = torch.from_numpy(scene.colors_or_default()).to(device)
    return FitTarget(name or str(scene.source), views, model, colors)


def splat_image(points, colors, camera, size: int, background) -> torch.Tensor:
    """(3, H, W) plain splatting of ``colors`` (N, 3) at ``points`` (N, 3) with ``size``-px
    splats; ``background`` (3,) where no point lands."""
    (r,) = rasterize_points(points, camera, size)
    img = gather_features(colors.to(points.device), r)
    return torch.where(r.mask[None], img, background.to(img.device)[:, None, None])


def background_color(views: list[View]) -> torch.Tensor:
    """(3,) median color of the photos' one-pixel borders: the likely background."""
    border = []
    for v in views:
        im = v.image
        border += [im[:, 0, :], im[:, -1, :], im[:, :, 0], im[:, :, -1]]
    return torch.cat(border, dim=1).median(dim=1).values
