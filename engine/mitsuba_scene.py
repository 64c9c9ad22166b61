"""Mitsuba 3 as the path tracer: variant choice, scenes, camera updates, 1-spp frames with AOVs.

The best variant available at run time is used: ``cuda_ad_rgb`` when CUDA works, else
``llvm_ad_rgb`` when an LLVM Mitsuba can use is installed (Debian's LLVM 15 crashes it; LLVM
19 works), else ``scalar_rgb``. Camera moves update the sensor's parameters in place instead of
reloading the scene, so JIT variants reuse their compiled kernels.

Camera conversion: Mitsuba's camera space has +Z forward, +Y up and +X left; ours (see
``engine.camera``) has +X right, +Y down, +Z forward, so ``to_world = c2w @ diag(-1, -1, 1, 1)``.
"""

from __future__ import annotations

import glob
import math
import os
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from engine.camera import Camera
from engine.errors import NsvError, SceneError

_FLIP = np.diag([-1.0, -1.0, 1.0, 1.0])
AOVS = "albedo:albedo,nn:sh_normal,dd:depth"
MAX_BUILT_SIZES = 5  # film sizes kept built (the still one and the moving ones)


def _find_llvm() -> str | None:
    if os.environ.get("DRJIT_LIBLLVM_PATH"):
        return os.environ["DRJIT_LIBLLVM_PATH"]
    for major in (20, 19, 18, 17, 16):
        hits = sorted(
            glob.glob(f"/usr/lib/*/libLLVM-{major}.so*")
            + glob.glob(f"/usr/lib/llvm-{major}/lib/libLLVM*.so*")
        )
        if hits:
            return hits[0]
    return None


def choose_variant(prefer: str | None = None) -> str:
    """Set and return the Mitsuba variant (see module docstring); $NSV_MITSUBA_VARIANT wins."""
    try:
        import mitsuba as mi
    except ImportError:
        raise NsvError("path tracing needs Mitsuba 3: pip install mitsuba") from None
    prefer = prefer or os.environ.get("NSV_MITSUBA_VARIANT")
    candidates = [prefer] if prefer else []
    try:
        import torch

        if torch.cuda.is_available():
            candidates.append("cuda_ad_rgb")
    except ImportError:
        pass
    llvm = _find_llvm()
    if llvm:
        os.environ.setdefault("DRJIT_LIBLLVM_PATH", llvm)
        candidates.append("llvm_ad_rgb")
    candidates.append("scalar_rgb")
    for v in candidates:
        if v not in mi.variants():
            continue
        try:
            mi.set_variant(v)
        except Exception:
            continue
        threads = os.environ.get("OMP_NUM_THREADS", "")
        if v.startswith("llvm") and threads.isdigit() and int(threads) > 0:
            # Respect the user's thread limit (e.g. data generation beside a training run).
            import drjit as dr

            dr.set_thread_count(int(threads))
        return v
    raise NsvError("no usable Mitsuba variant")


@dataclass
class AOVFrame:
    """One path-traced sample of every pixel.

    radiance: (H, W, 3) float32, linear RGB; albedo: (H, W, 3); normal: (H, W, 3) world-space
    shading normals (0 where nothing was hit); depth: (H, W) float32, 0 where nothing was hit.
    """

    radiance: np.ndarray
    albedo: np.ndarray
    normal: np.ndarray
    depth: np.ndarray


def cornell_box_dict() -> dict:
    import mitsuba as mi

    d = mi.cornell_box()
    d.pop("sensor", None)
    return d


class MitsubaScene:
    """A Mitsuba scene with our sensor. ``render(camera, spp, seed)`` -> AOVFrame."""

    def __init__(
        self,
        source: str | Path | None = None,
        width: int = 256,
        height: int = 256,
        max_depth: int = 6,
        variant: str | None = None,
        scene_dict: dict | None = None,
    ) -> None:
        """source: a Mitsuba XML path or 'cornell-box'; or pass ``scene_dict`` (a Mitsuba scene
        dict without sensor/integrator, viewed from the Cornell box's camera by default)."""
        self.variant = choose_variant(variant)
        import mitsuba as mi

        self.mi = mi
        self.source = str(source) if source else "cornell-box"
        self.max_depth = max_depth
        self._home: Camera | None = None
        if scene_dict is not None or source is None or str(source) == "cornell-box":
            self.scene_dict = scene_dict if scene_dict is not None else cornell_box_dict()
            self._home_pose = (
                np.array([0.0, 0.0, 3.9]),
                np.zeros(3),
                np.array([0.0, 1.0, 0.0]),
                39.3077,
            )
        else:
            self.scene_dict = None
            self._xml = Path(source)
            if not self._xml.is_file():
                raise SceneError(source, "no such file")
        self._built: dict = {}  # (width, height) -> built scene and its parameter keys
        self.build_ms = 0.0  # time spent building scenes so far (not rendering)
        self._render1 = self._frozen_render()
        self._build(width, height)

    # --- building ----------------------------------------------------------------------------
    def _sensor(self, width: int, height: int, fov_y: float, to_world) -> dict:
        mi = self.mi
        return {
            "type": "perspective",
            "fov": fov_y,
            "fov_axis": "y",
            "near_clip": 0.01,
            "far_clip": 1e4,
            "to_world": mi.ScalarTransform4f(to_world),
            "sampler": {"type": "independent", "sample_count": 1},
            "film": {
                "type": "hdrfilm",
                "width": width,
                "height": height,
                "rfilter": {"type": "box"},
                "pixel_format": "rgb",
            },
        }

    def _integrator(self) -> dict:
        return {
            "type": "aov",
            "aovs": AOVS,
            "path": {"type": "path", "max_depth": self.max_depth, "hide_emitters": False},
        }

    def _build(self, width: int, height: int) -> None:
        """Make (width, height) the current film size. Built scenes are kept per size: a
        rebuild costs ~0.7 s on a 2-core CPU (JIT variants compile for it), and the viewer
        alternates between a moving and a still size."""
        built = self._built
        if (width, height) in built:
            self.scene, self.params, self._to_world_key, self._fov_key, self._home = built.pop(
                (width, height)
            )
        else:
            t0 = time.perf_counter()
            self._build_new(width, height)
            self.build_ms += (time.perf_counter() - t0) * 1000
        built[(width, height)] = (
            self.scene, self.params, self._to_world_key, self._fov_key, self._home
        )  # fmt: skip
        while len(built) > MAX_BUILT_SIZES:
            built.pop(next(iter(built)))  # the least recently used size
        self.size = (width, height)

    def _build_new(self, width: int, height: int) -> None:
        mi = self.mi
        if self.scene_dict is not None:
            eye, target, up, fov = self._home_pose
            home = Camera.look_at(eye, target, up, width, height, fov)
            d = dict(self.scene_dict)
            d["sensor"] = self._sensor(width, height, fov, home.camera_to_world @ _FLIP)
            d["integrator"] = self._integrator()
            try:
                self.scene = mi.load_dict(d)
            except Exception as e:
                raise NsvError(f"cannot build the Mitsuba scene: {e}") from None
            self._home = home
        else:
            loaded = self._load_xml()
            # Re-create with our sensor and integrator; the file's first sensor is home.
            home = Camera.look_at([0, 0, 4], [0, 0, 0], [0, 1, 0], width, height, 45)
            sensors = loaded.sensors()
            if sensors:
                p = mi.traverse(sensors[0])
                keys = list(p.keys())
                tw = next((k for k in keys if k.endswith("to_world")), None)
                fv = next((k for k in keys if k.endswith("x_fov")), None)
                if tw is not None:
                    to_world = np.array(p[tw].matrix, dtype=np.float64).reshape(4, 4)
                    fov_x = float(np.asarray(p[fv]).ravel()[0]) if fv else 45.0
                    fov_y = 2 * math.degrees(
                        math.atan(math.tan(math.radians(fov_x) / 2) * height / width)
                    )
                    home = Camera.from_fov(width, height, fov_y, np.linalg.inv(to_world @ _FLIP))
            self._home = home
            d = {"type": "scene"}
            for i, shape in enumerate(loaded.shapes()):
                d[f"shape_{i}"] = shape
            for i, em in enumerate(loaded.emitters()):
                d[f"emitter_{i}"] = em
            d["sensor"] = self._sensor(width, height, home.fov_y_deg, home.camera_to_world @ _FLIP)
            d["integrator"] = self._integrator()
            try:
                self.scene = mi.load_dict(d)
            except Exception as e:
                raise SceneError(self._xml, f"cannot rebuild the Mitsuba scene ({e})") from None
        self.params = mi.traverse(self.scene)
        sensor_keys = [
            k
            for k in self.params.keys()
            if k.endswith("to_world") and ("sensor" in k.lower() or "camera" in k.lower())
        ]
        self._to_world_key = sensor_keys[0]
        fov_keys = [k for k in self.params.keys() if k.endswith("x_fov")]
        self._fov_key = fov_keys[0] if fov_keys else None

    def _load_xml(self):
        """The XML file, parsed once: a resize rebuilds around the same shapes and emitters."""
        if getattr(self, "_loaded", None) is None:
            try:
                self._loaded = self.mi.load_file(str(self._xml))
            except Exception as e:
                msg = str(e).strip().splitlines()[-1] if str(e).strip() else type(e).__name__
                raise SceneError(self._xml, f"cannot load the Mitsuba scene ({msg})") from None
        return self._loaded

    @property
    def home_camera(self) -> Camera:
        return self._home

    # --- rendering ---------------------------------------------------------------------------
    def _frozen_render(self):
        """A 1-spp ``mi.render`` that Dr.Jit traces once per built scene and then replays
        (``dr.freeze``): tracing the path integrator costs ~7-10 ms a call on a 2-core CPU, a
        third of a moving 120×99 frame (21 -> 14 ms; 320×265: 105 -> 86 ms). None for the
        scalar variant, or with $NSV_MITSUBA_FREEZE=0."""
        if self.variant.startswith("scalar") or os.environ.get("NSV_MITSUBA_FREEZE") == "0":
            return None
        import drjit as dr

        if not hasattr(dr, "freeze"):
            return None
        mi = self.mi

        # Each built scene (one per film size) is its own recording; the LRU limit drops
        # those of sizes no longer built.
        @dr.freeze(limit=2 * MAX_BUILT_SIZES, warn_after=1_000_000)
        def render1(scene, seed):
            return mi.render(scene, spp=1, seed=seed)

        return render1

    def set_camera(self, camera: Camera) -> None:
        """Move the sensor (parameter update, no reload); rebuilds only when the size changes."""
        if (camera.width, camera.height) != self.size:
            self._build(camera.width, camera.height)
        mi = self.mi
        self.params[self._to_world_key] = mi.Transform4f(camera.camera_to_world @ _FLIP)
        if self._fov_key is not None:
            # Mitsuba's x_fov is horizontal: convert our vertical field of view.
            fov_x = 2 * math.degrees(math.atan(camera.width / (2 * camera.fx)))
            self.params[self._fov_key] = fov_x
        self.params.update()

    def render(self, camera: Camera, spp: int = 1, seed: int = 0) -> AOVFrame:
        """Path trace ``spp`` samples per pixel with a fresh ``seed``; returns AOVFrame."""
        self.set_camera(camera)
        # Mitsuba's seeds are 32-bit: fold larger ones instead of failing.
        seed = int(seed) % 2**32
        img = None
        if spp == 1 and self._render1 is not None:
            import drjit as dr

            try:  # the seed is opaque: a new one replays the recording instead of re-tracing
                img = self._render1(self.scene, dr.opaque(self.mi.UInt32, seed))
            except Exception:
                self._render1 = None  # a scene Dr.Jit cannot freeze: traced every frame
        if img is None:
            img = self.mi.render(self.scene, spp=spp, seed=seed)
        arr = np.asarray(img, dtype=np.float32)
        H, W = camera.height, camera.width
        # NaN/Inf samples (rare, from degenerate geometry) never reach the display or the
        # denoiser: they are zeroed in every buffer.
        arr = np.nan_to_num(arr.reshape(H, W, -1), nan=0.0, posinf=0.0, neginf=0.0)
        return AOVFrame(arr[..., 0:3], arr[..., 3:6], arr[..., 6:9], arr[..., 9])
