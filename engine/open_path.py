"""Open any supported scene path: dispatch on what the path is (the scene loaders, Gaussian
splatting files, Mitsuba scenes, and a capture's points computed by the import pipeline on
its first open)."""

from __future__ import annotations

from pathlib import Path

from engine.errors import SceneError
from engine.scene.colmap import load_colmap
from engine.scene.nerf import is_nerf_capture, load_nerf, read_transforms
from engine.scene.ply import load_ply_cloud
from engine.scene.types import Scene

SUPPORTED = (
    "a point cloud (.ply incl. 3D Gaussian Splatting, .splat, .spz, .las/.laz, .e57, .pcd, .xyz/.pts/.txt), "
    "a mesh to sample (.obj/.stl/.glb/.gltf/.off), "
    "a COLMAP folder "
    "(cameras/images/points3D, .bin or .txt), a NeRF capture (transforms.json), "
    "a Mitsuba .xml scene or 'cornell-box', or 'demo' (the bundled demo)"
)


def load_scene(path: str | Path, progress=None) -> Scene:
    """Load a scene from a PLY file or a COLMAP folder. Raises SceneError with a clear message.
    ``progress`` (engine.capture.progress.Progress): stages and cancel for loads that compute
    (a capture's points triangulated on first open)."""
    from engine.assets import resolve_scene_name

    if str(path) == "cornell-box":
        from engine.scene.mitsuba_loader import load_mitsuba

        return load_mitsuba("cornell-box")
    path = Path(resolve_scene_name(path)).expanduser()
    if not path.exists():
        raise SceneError(path, "no such file or folder")
    if is_nerf_capture(path) and not (path.is_dir() and _has_colmap_model(path)):
        return _load_nerf(path, progress)
    if path.is_dir():
        return load_colmap(path)
    suffix = path.suffix.lower()
    if suffix == ".ply":
        return load_ply_cloud(path)
    if suffix in (".splat", ".spz") and path.is_file():
        from engine.scene.ply import gaussians_scene

        return gaussians_scene(path, load_gaussians(path))
    if suffix in (".las", ".laz", ".e57", ".pcd", ".xyz", ".pts", ".txt", ".obj", ".stl", ".glb",
                  ".gltf", ".off") and path.is_file():  # fmt: skip
        import engine.scene.pointfiles as pointfiles

        if suffix in pointfiles.MESH_SUFFIXES:
            return pointfiles.load_mesh_as_points(path)
        if suffix in (".las", ".laz"):
            return pointfiles.load_las(path)
        if suffix == ".e57":
            return pointfiles.load_e57(path)
        if suffix == ".pcd":
            return pointfiles.load_pcd(path)
        if not path.name.startswith(("cameras", "images", "points3D")):
            return pointfiles.load_xyz(path)
    if path.suffix.lower() == ".xml":
        from engine.scene.mitsuba_loader import load_mitsuba

        return load_mitsuba(path)
    if path.name in {
        f"{n}{e}" for n in ("cameras", "images", "points3D") for e in (".bin", ".txt")
    }:
        return load_colmap(path.parent)
    raise SceneError(path, f"unsupported file type {path.suffix or '(none)'}; open {SUPPORTED}")


def _has_colmap_model(path: Path) -> bool:
    from engine.scene.colmap import find_model_dir

    try:
        find_model_dir(path)
    except SceneError:
        return False
    return True


def _load_nerf(path: Path, progress=None) -> Scene:
    """A transforms.json capture; without a point cloud of its own, points are triangulated
    from the known poses once and cached."""
    cap = read_transforms(path)
    if cap.ply_path is not None:
        return load_nerf(path)
    from engine.capture.importer import nerf_points

    if progress is not None and cap.frames:
        # The cameras exist already: show them (their centres as points) while the points are
        # computed.
        import numpy as np

        centres = np.stack([f.camera.position for f in cap.frames]).astype(np.float32)
        grey = np.full_like(centres, 0.6)
        progress.show(load_nerf(path, centres, grey), f"{len(cap.frames)} cameras")
    pts, cols = nerf_points(cap.root, progress)
    return load_nerf(path, pts, cols)


def load_gaussians(path: Path):
    """The Gaussians (engine.gaussians.Gaussians) of a splatting file: a 3DGS PLY, an
    antimatter15 ``.splat`` or a Niantic ``.spz``."""
    from engine.gaussians.io import load_splat, load_spz
    from engine.scene.ply import read_gaussians_ply

    suffix = Path(path).suffix.lower()
    if suffix == ".splat":
        return load_splat(path)
    if suffix == ".spz":
        return load_spz(path)
    return read_gaussians_ply(path)
