"""``nsv``: open the viewer, or run a headless subcommand (render, bench, make-demo).

Subcommands are thin wrappers over ``engine`` (and the shared GL code for GL-points images).
User errors print one line, ``nsv: error: <file>: <problem>``, and exit with status 1.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

ASSETS = Path(__file__).resolve().parent.parent / "assets"
DEMO_SCENE = ASSETS / "demo" / "armadillo_bunny.ply"
SUBCOMMANDS = ("view", "render", "bench", "make-demo")


def _view_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="nsv",
        description="Neural Scene Viewer. Opens the viewer on PATH (a .ply point cloud or a "
        "COLMAP folder), or on the bundled demo. Subcommands: " + ", ".join(SUBCOMMANDS[1:]) + ".",
    )
    p.add_argument("path", nargs="?", help="scene to open (default: the bundled demo)")
    p.add_argument("--device", help="cpu, cuda or cuda:N (default: CUDA when available)")
    return p


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
    p.add_argument("--mode", default="gl", choices=["gl", "color", "depth", "normal"])
    p.add_argument("--size", help="WxH (default: the camera's own size, or 960x640)")
    p.add_argument("--point-size", type=int, default=2)
    p.add_argument("--scale", type=int, default=0, help="rasterizer pyramid level to show")
    p.add_argument("--device", help="cpu, cuda or cuda:N")
    return p


def _bench_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="nsv bench", description="Benchmarks.")
    p.add_argument("what", choices=["raster"], help="raster: rasterizer and render-mode timings")
    p.add_argument("--points", default="1e6,1e7", help="comma-separated cloud sizes")
    p.add_argument("--sizes", default="512x512,1920x1080", help="comma-separated WxH")
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--device", help="cpu, cuda or cuda:N")
    p.add_argument("--json", help="also write the results to this JSON file")
    return p


def parse_size(text: str) -> tuple[int, int]:
    from engine.errors import NsvError

    try:
        w, h = (int(v) for v in text.lower().split("x"))
        if w <= 0 or h <= 0 or w > 16384 or h > 16384:
            raise ValueError
    except ValueError:
        raise NsvError(f"--size {text!r}: expected WxH, e.g. 1280x720") from None
    return w, h


def resolve_camera(scene, spec: str, size: tuple[int, int] | None):
    """Turn a --camera argument into a Camera (see ``nsv render --help``)."""
    from engine.camera import Camera
    from engine.errors import NsvError
    from engine.navigation import home_navigator

    if spec == "default":
        w, h = size or (960, 640)
        return home_navigator(scene).camera(w, h)
    if spec.endswith(".json"):
        path = Path(spec)
        try:
            cam = Camera.from_dict(json.loads(path.read_text()))
        except FileNotFoundError:
            raise NsvError(f"{path}: no such camera file") from None
        except (json.JSONDecodeError, KeyError, TypeError, ValueError) as e:
            raise NsvError(f"{path}: not a valid camera file ({e})") from None
        return cam.resized(*size) if size else cam
    names = [v.name for v in scene.views]
    if spec.isdigit() and int(spec) < len(scene.views):
        cam = scene.views[int(spec)].camera
    elif spec in names:
        cam = scene.views[names.index(spec)].camera
    else:
        have = f"0..{len(names) - 1} or an image name" if names else "none (the scene has no views)"
        raise NsvError(f"--camera {spec!r}: no such registered view; available: {have}")
    return cam.resized(*size) if size else cam


def cmd_render(argv: list[str]) -> int:
    import imageio.v3 as iio

    from engine.errors import NsvError
    from engine.scene import load_scene

    a = _render_parser().parse_args(argv)
    scene = load_scene(a.scene)
    size = parse_size(a.size) if a.size else None
    cam = resolve_camera(scene, a.camera, size)
    if a.mode == "gl":
        from viewer.gl.offscreen import OffscreenPointRenderer

        image = OffscreenPointRenderer(scene).render(cam, a.point_size)
    else:
        from engine.points.render import PointCloudRenderer, PointRenderOptions

        r = PointCloudRenderer(scene, a.device)
        image = r.render(cam, PointRenderOptions(a.mode, a.point_size, a.scale)).image
    out = Path(a.out)
    if not out.parent.exists():
        raise NsvError(f"{out}: folder {out.parent} does not exist")
    tmp = out.with_name(out.name + ".tmp.png")
    iio.imwrite(tmp, image)
    tmp.replace(out)
    print(f"wrote {out} ({cam.width}x{cam.height}, mode {a.mode})")
    return 0


def cmd_bench(argv: list[str]) -> int:
    from viewer.bench import bench_raster

    a = _bench_parser().parse_args(argv)
    points = [int(float(p)) for p in a.points.split(",")]
    sizes = [parse_size(s) for s in a.sizes.split(",")]
    results = bench_raster(points, sizes, a.repeats, a.device, demo=DEMO_SCENE)
    if a.json:
        Path(a.json).write_text(json.dumps(results, indent=1))
    return 0


def cmd_make_demo(argv: list[str]) -> int:
    from engine.scene.demo import build_demo

    p = argparse.ArgumentParser(prog="nsv make-demo", description="Rebuild the demo cloud.")
    p.add_argument("mesh_dir", help="folder with armadillo.obj and bunny.obj")
    p.add_argument("out", nargs="?", default=str(DEMO_SCENE))
    p.add_argument("--points", type=int, default=240_000)
    a = p.parse_args(argv)
    n = build_demo(a.mesh_dir, a.out, a.points)
    print(f"wrote {a.out} ({n:,} points)")
    return 0


def cmd_view(argv: list[str]) -> int:
    a = _view_parser().parse_args(argv)
    from engine.scene import load_scene

    path = a.path or str(DEMO_SCENE)
    scene = load_scene(path)  # a bad path fails here with one line, before any window opens
    from viewer.app import run_viewer

    return run_viewer(path, a.device, scene)


def main(argv: list[str] | None = None) -> int:
    from engine.errors import NsvError

    argv = list(sys.argv[1:] if argv is None else argv)
    cmd = argv[0] if argv and argv[0] in SUBCOMMANDS else "view"
    if argv and argv[0] == cmd:
        argv = argv[1:]
    handler = {
        "view": cmd_view,
        "render": cmd_render,
        "bench": cmd_bench,
        "make-demo": cmd_make_demo,
    }
    try:
        return handler[cmd](argv)
    except NsvError as e:
        print(f"nsv: error: {e}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("nsv: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
