"""`nsv [PATH]`: open the viewer."""

from __future__ import annotations

import argparse

from engine.assets import DEMO_SCENE, HOLOGAN
from nsv.options import add_device


def _view_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="nsv",
        description="Neural Scene Viewer. Opens the viewer on PATH (a .ply point cloud or a "
        "COLMAP folder), or on the bundled demo. `nsv --help` lists the commands.",
    )
    p.add_argument("path", nargs="?", help="scene to open (default: the bundled demo)")
    add_device(p)
    p.add_argument(
        "--latent",
        nargs="?",
        const=str(HOLOGAN),
        metavar="MODEL",
        help="start in Latent mode with a HoloGAN model folder (default: the bundled one)",
    )
    return p


def cmd_view(argv: list[str]) -> int:
    a = _view_parser().parse_args(argv)
    from pathlib import Path

    from engine.assets import resolve_scene_name
    from engine.errors import SceneError

    path = str(resolve_scene_name(a.path)) if a.path else str(DEMO_SCENE)
    if path != "cornell-box" and not Path(path).expanduser().exists():
        raise SceneError(Path(path), "no such file or folder")  # one line, before any window
    from viewer.app import run_viewer

    # The window first: the scene loads in the background with its stages in the status bar
    # (a capture's first open triangulates for minutes); errors are a dialog and one line here.
    return run_viewer(path, a.device, None, latent=a.latent)
