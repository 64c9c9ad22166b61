"""Where a scene's fitted neural model lives, and opening a fitted model as a scene."""

from __future__ import annotations

from pathlib import Path

from engine.npbg.layout import CONFIG_FILE, MODEL_FILE


def default_model_dir(scene_path: str | Path) -> Path:
    """``SCENE_DIR/npbg`` for a folder scene, ``NAME.npbg`` beside a ``NAME.ply``."""
    p = Path(scene_path)
    return p / "npbg" if p.is_dir() else p.with_suffix(".npbg")


def is_model_dir(path: str | Path) -> bool:
    p = Path(path)
    return (p / MODEL_FILE).is_file() and (p / CONFIG_FILE).is_file()


def find_fitted_model(scene_path: str | Path) -> Path | None:
    """The fitted model for a scene path (or the path itself if it is one), if any."""
    from engine.assets import resolve_scene_name

    p = Path(resolve_scene_name(scene_path))
    if is_model_dir(p):
        return p
    d = default_model_dir(p)
    return d if is_model_dir(d) else None


def writable_model_dir(scene_path: str | Path) -> Path:
    """Where the viewer saves a fit: beside the scene when writable, else in the user cache."""
    import os

    d = default_model_dir(scene_path)
    parent = d if d.exists() else d.parent
    if parent.exists() and os.access(parent, os.W_OK):
        return d
    cache = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "nsv" / "fits"
    return cache / (Path(scene_path).resolve().name + ".npbg")


def open_scene(path: str | Path, device="cpu", progress=None):
    """Load a scene and its fitted neural model if it has one.

    ``path`` may be a PLY / COLMAP scene (the model is looked up beside it) or a fitted model
    folder (its source scene is opened when it still exists, else the model's own points).
    Returns (Scene, NeuralPointModel | None).
    """
    import numpy as np

    from engine.assets import resolve_scene_name
    from engine.open_path import load_scene
    from engine.scene.types import Scene

    path = Path(resolve_scene_name(path))
    if not is_model_dir(path):
        scene = load_scene(path, progress)
        if progress is not None:  # what exists is shown while PyTorch and the model load
            progress.show(scene, f"{scene.num_points:,} points")
    from engine.npbg.data import fill_fit_focal
    from engine.npbg.model import NeuralPointModel

    if is_model_dir(path):
        model = NeuralPointModel.load(path, device)
        source = (getattr(model, "summary", {}) or {}).get("scene")
        if source and Path(source).exists():
            scene = load_scene(source)
            fill_fit_focal(model, scene)
        else:
            pts = model.points.cpu().numpy()
            col = ((model.descriptors[:, :3].detach().cpu().numpy() + 1) / 2).clip(0, 1)
            scene = Scene(points=pts, colors=col.astype(np.float32), source=path, name=path.stem)
        return scene, model
    found = find_fitted_model(path)
    model = NeuralPointModel.load(found, device) if found is not None else None
    if model is not None:
        fill_fit_focal(model, scene)
    _attach_gaussians(scene, path)
    return scene, model


def _attach_gaussians(scene, folder: Path) -> None:
    """A capture folder that also holds a Gaussian splatting result: its Gaussians ride along
    (the Gaussians mode, and the wipe compare of the neural rendering against them). A damaged
    one is said in one line and left out; the capture still opens."""
    import sys

    from engine.errors import SceneError
    from engine.gaussians.io import find_splat_file
    from engine.open_path import load_gaussians

    if scene.gaussians is not None or not Path(folder).is_dir():
        return
    splat = find_splat_file(Path(folder))
    if splat is None:
        return
    try:
        g = load_gaussians(splat)
    except SceneError as e:
        print(f"nsv: {e} (left out)", file=sys.stderr)
        return
    scene.gaussians = g
