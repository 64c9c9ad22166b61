"""`nsv render`: one image of a scene, headlessly, in any registered mode."""

from __future__ import annotations

import argparse
from pathlib import Path

import viewer.modes  # noqa: F401  (registers the modes the viewer draws with OpenGL)
from engine.device import pick_device
from engine.errors import NsvError
from engine.modes import MODES, BuildContext, build_renderers, get_mode
from engine.view_settings import ViewSettings
from nsv.common import cli_progress, parse_size, resolve_camera
from nsv.options import add_device


def _render_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="nsv render",
        description="Render a scene headlessly: one PNG, or with --path a flight as MP4 / GIF / "
        "a folder of PNGs.",
    )
    p.add_argument("scene", help="a .ply point cloud or a COLMAP folder")
    p.add_argument(
        "--camera",
        default="default",
        help="'default' (the viewer's home view), the index or image name of a registered view, "
        "or a .camera.json written by the viewer's screenshot",
    )
    p.add_argument(
        "--out",
        required=True,
        help="output PNG; with --path an .mp4 or .gif, or a folder for a PNG sequence",
    )
    p.add_argument(
        "--path",
        help="a camera path: the viewer's JSON or nerfstudio's camera_path.json (its size and "
        "fps are used unless --size / --fps are given)",
    )
    p.add_argument("--fps", type=float, help="--path: frames per second")
    p.add_argument(
        "--denoise",
        action="store_true",
        help="pathtrace: run the bundled denoiser on each frame (temporal state carried along)",
    )
    p.add_argument(
        "--mode",
        default="gl",
        choices=[m.key for m in MODES.values() if m.renders_scene],
        help="a render mode (the viewer's keys 1-9, G); the neural modes need a fitted scene, "
        "pathtrace a Mitsuba scene, gaussians a Gaussian splatting file",
    )
    p.add_argument(
        "--background",
        default="0,0,0",
        help="gaussians: background colour as R,G,B in [0, 1] (default black)",
    )
    p.add_argument("--spp", type=int, default=64, help="samples per pixel for --mode pathtrace")
    p.add_argument("--size", help="WxH (default: the camera's own size, or 960x640)")
    p.add_argument("--point-size", type=int, default=2)
    p.add_argument("--scale", type=int, default=0, help="rasterizer pyramid level to show")
    add_device(p)
    return p


def _path_trace(scene, a, cam):
    """A still path-traced image of ``a.spp`` samples (the viewer accumulates them instead)."""

    source = scene.pathtrace_source
    if source is None:
        raise NsvError(f"{a.scene}: path tracing needs a Mitsuba scene (.xml or cornell-box)")
    from engine.mitsuba_scene import MitsubaScene
    from engine.pathtrace.progressive import to_display

    if a.spp < 1:
        raise NsvError("--spp must be at least 1")
    # The loader already parsed the file: reuse its scene (render() adapts the film size).
    ms = scene.pathtrace_scene or MitsubaScene(source, cam.width, cam.height)
    return to_display(ms.render(cam, a.spp).radiance)


def _frame_renderer(scene, a):
    """A function camera -> (H, W, 3) uint8 image in the mode ``a.mode``."""

    mode = get_mode(a.mode)
    if mode.gl is not None:  # drawn by the viewer's OpenGL drawer: the same one, offscreen
        from engine.glcontext import create_headless_context

        made = mode.build(scene, BuildContext()) if mode.build is not None else None
        if mode.build is not None and made is None:
            raise NsvError(f"{a.scene}: mode {mode.key!r} is not available here. {mode.needs}.")
        drawer = mode.gl(create_headless_context())
        drawer.set_scene(scene, made)
        drawer.background = _background(a.background)
        return drawer.render
    if mode.renderer == "gl":
        from viewer.gl.offscreen import OffscreenPointRenderer

        gl = OffscreenPointRenderer(scene)
        return lambda cam: gl.render(cam, a.point_size)
    if mode.renderer == "pathtrace":
        if a.denoise:
            return _denoised_path_trace(scene, a)
        return lambda cam: _path_trace(scene, a, cam)
    model = None
    if mode.renderer == "neural":
        from engine.npbg.files import find_fitted_model
        from engine.npbg.model import NeuralPointModel

        found = find_fitted_model(a.scene)
        if found is None:
            raise NsvError(f"{a.scene}: no fitted neural model (run `nsv fit` first)")
        model = NeuralPointModel.load(found)
        from engine.npbg.data import fill_fit_focal

        fill_fit_focal(model, scene)  # drawn at the fit's scale, as the viewer draws it
    renderer = build_renderers(scene, model, pick_device(a.device)).for_mode(mode)
    if renderer is None:
        raise NsvError(f"{a.scene}: mode {mode.key!r} is not available here. {mode.needs}.")
    settings = ViewSettings(mode=mode.key, point_size=a.point_size, scale=a.scale)

    def still(cam):
        # As the viewer's still frame once refined: a neural view's offset passes all in.
        for _ in range(8):
            f = renderer.render(cam, mode.make_options(settings, None, False))
            if not f.progressive:
                break
        return f.image

    return still


def _background(text: str) -> tuple[float, float, float]:
    try:
        rgb = tuple(float(v) for v in text.split(","))
    except ValueError:
        rgb = ()
    if len(rgb) != 3 or not all(0.0 <= v <= 1.0 for v in rgb):
        raise NsvError(f"--background {text}: expected R,G,B with each in [0, 1], e.g. 1,1,1")
    return rgb


def _denoised_path_trace(scene, a):
    """``a.spp`` samples per frame, then the bundled denoiser with its state carried from frame
    to frame (reprojected with the camera motion), as the viewer does while flying."""
    from engine.assets import DENOISER
    from engine.denoise.train import load_denoiser
    from engine.mitsuba_scene import MitsubaScene
    from engine.pathtrace.progressive import ProgressiveRenderer, to_display

    source = scene.pathtrace_source
    if source is None:
        raise NsvError(f"{a.scene}: path tracing needs a Mitsuba scene (.xml or cornell-box)")
    ms = scene.pathtrace_scene or MitsubaScene(source)
    pr = ProgressiveRenderer(ms, load_denoiser(DENOISER))
    frames = iter(range(2**31))  # a fresh seed per frame: independent noise

    def render(cam):
        f = ms.render(cam, a.spp, seed=next(frames))
        return to_display(pr.denoise_frame(f, a.spp, cam))

    return render


def _render_path(scene, a, size) -> int:
    """Every frame of a camera path, to a video or a folder of PNGs, with a progress bar."""
    import imageio.v3 as iio
    from tqdm import tqdm

    from engine.camera_path import CameraPath

    path = CameraPath.load(a.path)
    if a.fps is not None and not 0 < a.fps <= 1000:
        raise NsvError(f"--fps {a.fps}: expected a number of frames per second in (0, 1000]")
    w, h = size or (path.width, path.height)
    cams = path.cameras(w, h, a.fps)
    out = Path(a.out)
    video = out.suffix.lower() in (".mp4", ".gif", ".mov", ".mkv")
    if not video:
        out.mkdir(parents=True, exist_ok=True)
    render = _frame_renderer(scene, a)
    frames = []
    for i, cam in enumerate(tqdm(cams, desc=f"rendering {out.name}", unit="frame")):
        image = render(cam)
        if video:
            frames.append(image)
        else:
            iio.imwrite(out / f"frame_{i:05d}.png", image)
    fps = a.fps or path.fps
    if video:
        import numpy as np

        tmp = out.with_name(out.stem + ".tmp" + out.suffix)
        if out.suffix.lower() == ".gif":
            iio.imwrite(tmp, np.stack(frames), duration=1000 / fps, loop=0)
        else:
            # H.264 wants even sizes; yuv420p plays everywhere.
            iio.imwrite(tmp, np.stack(frames), fps=fps, codec="libx264", macro_block_size=2)
        tmp.replace(out)
    print(f"wrote {out}: {len(cams)} frames {w}x{h} at {fps:g} fps, mode {a.mode}")
    return 0


def cmd_render(argv: list[str]) -> int:
    import imageio.v3 as iio

    from engine.open_path import load_scene

    a = _render_parser().parse_args(argv)
    with cli_progress() as progress:  # a capture opened the first time computes its points
        scene = load_scene(a.scene, progress)
    size = parse_size(a.size) if a.size else None
    out = Path(a.out)
    if not out.parent.exists():
        raise NsvError(f"{out}: folder {out.parent} does not exist")
    if a.path:
        return _render_path(scene, a, size)
    cam = resolve_camera(scene, a.camera, size)
    image = _frame_renderer(scene, a)(cam)
    tmp = out.with_name(out.name + ".tmp.png")
    iio.imwrite(tmp, image)
    tmp.replace(out)
    print(f"wrote {out} ({cam.width}x{cam.height}, mode {a.mode})")
    return 0
