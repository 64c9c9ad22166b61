"""Mitsuba scenes (XML files and the built-in Cornell box) as a Scene: a point cloud sampled
from their meshes (for the point modes, navigation and bounds) plus the path-trace source."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from engine.errors import SceneError
from engine.scene.types import Scene

CORNELL_BOX = "cornell-box"


def load_mitsuba(path: str | Path, n_points: int = 60_000) -> Scene:
    from engine.mitsuba_scene import MitsubaScene

    ms = MitsubaScene(path, 256, 256)  # kept for path tracing: the file is parsed once
    import mitsuba as mi
    import trimesh

    meshes, colors = [], []
    for shape in ms.scene.shapes():
        p = mi.traverse(shape)
        keys = list(p.keys())
        vk = next((k for k in keys if k.endswith("vertex_positions")), None)
        fk = next((k for k in keys if k.endswith("faces")), None)
        if vk is not None and fk is not None:
            v = np.array(p[vk], dtype=np.float64).reshape(-1, 3)
            f = np.array(p[fk], dtype=np.int64).reshape(-1, 3)
        else:
            tri = _analytic_mesh(shape, p)
            if tri is None:
                continue
            v, f = tri.vertices, tri.faces
        ck = next((k for k in keys if "reflectance" in k and k.endswith("value")), None)
        rgb = np.array(p[ck], dtype=np.float64).ravel()[:3] if ck else np.array([0.7, 0.7, 0.7])
        if rgb.size != 3:
            rgb = np.full(3, float(rgb.ravel()[0]) if rgb.size else 0.7)
        if "emitter" in " ".join(keys).lower() and ck is None:
            rgb = np.array([1.0, 1.0, 1.0])
        meshes.append(trimesh.Trimesh(v, f, process=False))
        colors.append(rgb)
    if not meshes:
        raise SceneError(path, "the Mitsuba scene has no triangle meshes to show")
    areas = np.array([m.area for m in meshes])
    counts = np.random.default_rng(0).multinomial(n_points, areas / areas.sum())
    pts, cols, nrms = [], [], []
    for m, c, k in zip(meshes, colors, counts, strict=True):
        if k == 0:
            continue
        s, face = trimesh.sample.sample_surface(m, int(k), seed=0)
        pts.append(s)
        nrms.append(m.face_normals[face])
        # Points show the diffuse color in sRGB, like a photo would.
        cols.append(np.tile(np.clip(c, 0, 1) ** (1 / 2.2), (int(k), 1)))
    home = ms.home_camera
    scene = Scene(
        points=np.concatenate(pts).astype(np.float32),
        colors=np.concatenate(cols).astype(np.float32),
        normals=np.concatenate(nrms).astype(np.float32),
        up=-home.R[1],
        source=Path(path) if str(path) != CORNELL_BOX else None,
        name=Path(str(path)).stem if str(path) != CORNELL_BOX else "Cornell box",
    )
    scene.pathtrace_source = str(path)
    scene.pathtrace_scene = ms
    scene.home_camera = home
    return scene


def _analytic_mesh(shape, params):
    """A triangle mesh standing in for Mitsuba's analytic shapes (their unit shape placed by
    ``to_world``), so they get sampled points too."""
    import trimesh

    kind = str(shape).split("[")[0].strip().lower()
    tw = next((k for k in params.keys() if k.endswith("to_world")), None)
    if tw is None:
        return None
    m = np.array(params[tw].matrix, dtype=np.float64).reshape(4, 4)
    if kind == "sphere":
        mesh = trimesh.creation.icosphere(subdivisions=3, radius=1.0)
    elif kind == "rectangle":
        mesh = trimesh.Trimesh(
            [[-1, -1, 0], [1, -1, 0], [1, 1, 0], [-1, 1, 0]], [[0, 1, 2], [0, 2, 3]], process=False
        )
    elif kind == "disk":
        mesh = trimesh.creation.cylinder(radius=1.0, height=1e-6, sections=64)
    elif kind == "cylinder":
        mesh = trimesh.creation.cylinder(radius=1.0, height=1.0, sections=64)
        mesh.apply_translation([0, 0, 0.5])
    else:
        return None
    mesh.apply_transform(m)
    return mesh
