"""`nsv [PATH]`: open the viewer."""

from __future__ import annotations

import argparse

from engine.assets import DEMO_SCENE, HOLOGAN


def _view_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="nsv",
        description="Neural Scene Viewer. Opens the viewer on PATH (a .ply point cloud or a "
        "COLMAP folder), or on the bundled demo. `nsv --help` lists the commands.",
    )
    p.add_argument("path", nargs="?", help="scene to open (default: the bundled demo)")
    p.add_argument("--device", help="cpu, cuda or cuda:N (default: CUDA when available)")
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
    from engine.npbg.files import open_scene

    path = a.path or str(DEMO_SCENE)
    loaded = open_scene(path)  # a bad path fails here with one line, before any window opens
    from viewer.app import run_viewer

    return run_viewer(path, a.device, loaded, latent=a.latent)
