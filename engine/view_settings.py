"""The viewer's state, headless: what the panels and keys edit, what the viewport draws by and
``nsv render`` fills from its arguments. Each render mode turns it into its renderer's options
(``engine.modes``).

Evented (psygnal, as napari's models): ``settings.events.<field>`` fires when a field changes,
``settings.events`` on any change, so the viewport re-renders and the panels follow whoever
changed it (a key, a script, a test) without being called by hand. Qt-free.
"""

from __future__ import annotations

from dataclasses import dataclass

from psygnal import evented

# Fields that do not change the picture (the viewport does not re-render for them).
NOT_DRAWN = frozenset({"fly_mode", "fly_speed", "target_ms", "refine_ms"})


@evented
@dataclass
class ViewSettings:
    mode: str = "gl"  # a key of engine.modes.MODES
    point_size: int = 2
    scale: int = 0  # rasterizer pyramid level shown (0 = full resolution)
    fov_y_deg: float = 50.0
    show_cameras: bool = True
    dynamic_resolution: bool = True
    fly_mode: bool = False
    fly_speed: float = 0.5  # scene radii per second
    target_ms: float = 40.0  # frame time dynamic resolution aims for while moving
    refine_ms: float = 1000.0  # full quality should be on screen this long after a stop
    wipe: float = 0.5  # compare mode: neural left of this fraction of the width
    compare_with: str = "splat"  # compare mode: "splat", "photo" (the nearest registered photo)
    # or "gaussians" (the capture's Gaussian splatting result, drawn by the viewer)
    pt_view: str = "color"  # path trace: color, albedo, normal or depth
    pt_max_side: int = 320  # path trace resolution (longest side), upscaled for display
    pt_max_spp: int = 1024
    pt_denoise: bool = False  # denoiser on the path-traced image
    pt_denoiser: str = "ours"  # which: engine.pathtrace.progressive.DENOISERS
    pt_split: bool = False  # show noisy | denoised halves
    pt_reference: bool = False  # render a 256-spp reference and plot error vs spp
    background: tuple[float, float, float] = (0.0, 0.0, 0.0)  # Gaussians: behind the splats
