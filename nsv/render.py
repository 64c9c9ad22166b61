"""`nsv render`: one image of a scene, headlessly, in any registered mode."""

from __future__ import annotations

import argparse
from pathlib import Path

from engine.device import pick_device
from engine.modes import MODES, build_renderers, get_mode
from engine.view_settings import ViewSettings
from nsv.common import parse_size, resolve_camera


def _render_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="nsv render", description="Render a scene headlessly to PNG.")
    p.add_argument("scene", help="a .ply point cloud or a COLMAP folder")
    p.add_argument(
        "--camera",
        default="default",
        help="'default' (the viewer's home view), the index or image name of a registered view, "
        "or a .camera.json written by the viewer's screenshot",
    )
    p.add_argument("--out", required=True, help="output PNG path")
    p.add_argument(
        "--mode",
        default="gl",
        choices=[m.key for m in MODES.values() if m.renders_scene],
        help="a render mode (the viewer's keys 1-8); the neural modes need a fitted scene, "
        "pathtrace a Mitsuba scene",
    )
    p.add_argument("--spp", type=int, default=64, help="samples per pixel for --mode pathtrace")
    p.add_argument("--size", help="WxH (default: the camera's own size, or 960x640)")
    p.add_argument("--point-size", type=int, default=2)
    p.add_argument("--scale", type=int, default=0, help="rasterizer pyramid level to show")
    p.add_argument("--device", help="cpu, cuda or cuda:N")
    return p


def _path_trace(scene, a, cam):
    """A still path-traced image of ``a.spp`` samples (the viewer accumulates them instead)."""
    from engine.errors import NsvError

    source = getattr(scene, "pathtrace_source", None)
    if source is None:
        raise NsvError(f"{a.scene}: path tracing needs a Mitsuba scene (.xml or cornell-box)")
    from engine.pathtrace.mitsuba_scene import MitsubaScene
    from engine.pathtrace.progressive import to_display

    if a.spp < 1:
        raise NsvError("--spp must be at least 1")
    # The loader already parsed the file: reuse its scene (render() adapts the film size).
    ms = getattr(scene, "pathtrace_scene", None) or MitsubaScene(source, cam.width, cam.height)
    return to_display(ms.render(cam, a.spp).radiance)


def cmd_render(argv: list[str]) -> int:
    import imageio.v3 as iio

    from engine.errors import NsvError
    from engine.scene import load_scene

    a = _render_parser().parse_args(argv)
    scene = load_scene(a.scene)
    size = parse_size(a.size) if a.size else None
    cam = resolve_camera(scene, a.camera, size)
    mode = get_mode(a.mode)
    if mode.renderer == "gl":
        from viewer.gl.offscreen import OffscreenPointRenderer

        image = OffscreenPointRenderer(scene).render(cam, a.point_size)
    elif mode.renderer == "pathtrace":
        image = _path_trace(scene, a, cam)
    else:
        model = None
        if mode.renderer == "neural":
            from engine.npbg.files import find_fitted_model
            from engine.npbg.model import NeuralPointModel

            found = find_fitted_model(a.scene)
            if found is None:
                raise NsvError(f"{a.scene}: no fitted neural model (run `nsv fit` first)")
            model = NeuralPointModel.load(found)
        renderer = build_renderers(scene, model, pick_device(a.device)).for_mode(mode)
        settings = ViewSettings(mode=mode.key, point_size=a.point_size, scale=a.scale)
        image = renderer.render(cam, mode.options(settings, None)).image
    out = Path(a.out)
    if not out.parent.exists():
        raise NsvError(f"{out}: folder {out.parent} does not exist")
    tmp = out.with_name(out.name + ".tmp.png")
    iio.imwrite(tmp, image)
    tmp.replace(out)
    print(f"wrote {out} ({cam.width}x{cam.height}, mode {a.mode})")
    return 0
