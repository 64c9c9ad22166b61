"""Progressive Monte Carlo path tracing (Mitsuba 3) with auxiliary buffers for denoising.

The names the viewer's controls need live here, free of PyTorch (the window shows before it
loads); the renderer is engine.pathtrace.progressive."""

DENOISERS = {"ours": "ours", "oidn": "Intel OIDN", "compare": "ours | Intel OIDN"}

MOVING_SCALE = 0.5  # the viewer's moving path-trace frames: this scale of the still size
# ... with the denoiser on: its fast model costs about as much as the path tracer at the moving
# size, so the frames fly smaller to stay near the frame budget (one size: see moving_scale).
MOVING_SCALE_DENOISED = 0.375


def moving_scale(denoise: bool) -> float:
    """Scale of a still view's size at which a moving camera's path-traced frames are drawn."""
    return MOVING_SCALE_DENOISED if denoise else MOVING_SCALE
