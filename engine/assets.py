"""Where the bundled demo scenes and trained weights live (``assets/`` in the repository)."""

from __future__ import annotations

from pathlib import Path

ASSETS = Path(__file__).resolve().parent.parent / "assets"
DEMO_SCENE = ASSETS / "demo" / "armadillo_bunny.ply"
PRETRAINED_NETWORK = ASSETS / "npbg" / "network.safetensors"
PRETRAINED_PREVIEW = ASSETS / "npbg" / "preview" / "network.safetensors"  # the fast layout
DENOISER = ASSETS / "denoiser"
HOLOGAN = ASSETS / "hologan"
RENDERNET = ASSETS / "rendernet"
RENDERNET_DEMO_MESH = ASSETS / "rendernet" / "demo_chair.obj"  # an unseen procedural chair
