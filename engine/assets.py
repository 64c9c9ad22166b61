"""Where the bundled demo scenes and trained weights live.

In a checkout they are ``assets/`` beside the packages; an installed wheel carries the same
folder as the package ``nsv_assets`` (pyproject maps it), found through importlib so that
``pip install`` of the project runs the demo without the source tree.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

DEMO_NAME = "demo"  # `nsv render demo`, `nsv demo`: the bundled scene by name


def _assets_root() -> Path:
    tree = Path(__file__).resolve().parent.parent / "assets"
    if (tree / "demo").is_dir():
        return tree
    spec = importlib.util.find_spec("nsv_assets")
    if spec is not None and spec.submodule_search_locations:
        return Path(next(iter(spec.submodule_search_locations)))
    return tree  # neither: the paths below name what is missing in one line when used


ASSETS = _assets_root()
DEMO_SCENE = ASSETS / "demo" / "armadillo_bunny.ply"
PRETRAINED_NETWORK = ASSETS / "npbg" / "network.safetensors"
PRETRAINED_PREVIEW = ASSETS / "npbg" / "preview" / "network.safetensors"  # the fast layout
DENOISER = ASSETS / "denoiser"
HOLOGAN = ASSETS / "hologan"
RENDERNET = ASSETS / "rendernet"
RENDERNET_DEMO_MESH = ASSETS / "rendernet" / "demo_chair.obj"  # an unseen procedural chair


def resolve_scene_name(path: str | Path) -> str | Path:
    """``demo`` names the bundled demo scene (unless a file of that name exists here)."""
    if str(path) == DEMO_NAME and not Path(path).exists():
        return DEMO_SCENE
    return path
