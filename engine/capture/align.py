"""Compare two sets of cameras up to a similarity transform (SfM recovers scale and frame
only up to one)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from engine.camera import Camera


def umeyama(src: np.ndarray, dst: np.ndarray) -> tuple[float, np.ndarray, np.ndarray]:
    """Scale s, rotation R (3, 3), translation t minimising |s R src + t - dst|^2.
    src, dst: (N, 3) corresponding points, N >= 3."""
    mu_s, mu_d = src.mean(0), dst.mean(0)
    xs, xd = src - mu_s, dst - mu_d
    cov = xd.T @ xs / len(src)
    U, S, Vt = np.linalg.svd(cov)
    D = np.eye(3)
    if np.linalg.det(U) * np.linalg.det(Vt) < 0:
        D[2, 2] = -1
    R = U @ D @ Vt
    var = (xs**2).sum() / len(src)
    s = float(np.trace(np.diag(S) @ D) / var) if var > 0 else 1.0
    return s, R, mu_d - s * R @ mu_s


def compare_cameras(ours: dict[str, Camera], reference: dict[str, Camera]) -> dict:
    """Align ``ours`` onto ``reference`` by camera centres (matched by name) and report
    rotation error (degrees) and position error (reference units, and as a fraction of the
    reference cameras' extent)."""
    names = sorted(set(ours) & set(reference))
    if len(names) < 3:
        raise ValueError(f"need 3+ cameras in common to align, have {len(names)}")
    src = np.stack([ours[n].position for n in names])
    dst = np.stack([reference[n].position for n in names])
    s, R, t = umeyama(src, dst)
    rot_err, pos_err = [], []
    for n, c_src, c_dst in zip(names, src, dst, strict=True):
        # A world point x maps to s R x + t; the camera's rotation becomes R_cam @ R^T.
        R_aligned = ours[n].R @ R.T
        cos = (np.trace(reference[n].R @ R_aligned.T) - 1) / 2
        rot_err.append(float(np.degrees(np.arccos(np.clip(cos, -1, 1)))))
        pos_err.append(float(np.linalg.norm(s * R @ c_src + t - c_dst)))
    extent = float(np.linalg.norm(dst - dst.mean(0), axis=1).max())
    return {
        "cameras": len(names),
        "rotation_deg_mean": float(np.mean(rot_err)),
        "rotation_deg_max": float(np.max(rot_err)),
        "position_mean": float(np.mean(pos_err)),
        "position_max": float(np.max(pos_err)),
        "position_mean_rel": float(np.mean(pos_err)) / max(extent, 1e-12),
        "position_max_rel": float(np.max(pos_err)) / max(extent, 1e-12),
    }


def compare_to_reference(scene_path, reference) -> dict:
    """Pose error of a scene's cameras against a reference scene or truth JSON, by image name
    (falling back to the name without folder and extension)."""
    from engine.errors import NsvError
    from engine.scene.colmap import load_colmap
    from engine.scene.nerf import is_nerf_capture, read_transforms

    def cams(path) -> dict:
        if str(path).endswith(".json") and not Path(path).name.startswith("transforms"):
            import json

            from engine.camera import Camera

            # {image name: camera dict} (what `nsv data capture` writes as truth.json)
            return {k: Camera.from_dict(v) for k, v in json.loads(Path(path).read_text()).items()}
        # Cameras only (opening a capture without points would compute them first).
        if is_nerf_capture(Path(path)):
            return {f.name: f.camera for f in read_transforms(path).frames}
        return {v.name: v.camera for v in load_colmap(path).views}

    ours, ref = cams(scene_path), cams(reference)
    if not set(ours) & set(ref):
        ours = {Path(k).stem: v for k, v in ours.items()}
        ref = {Path(k).stem: v for k, v in ref.items()}
    try:
        return compare_cameras(ours, ref)
    except ValueError as e:
        raise NsvError(f"{reference}: {e}") from None
