"""Camera pose refinement (engine.npbg.pose): a known perturbation is undone."""

from __future__ import annotations

import numpy as np
import torch

from engine.camera import Camera, rotation_about
from engine.npbg.fit import Fitter, make_target
from engine.npbg.pose import align_camera, twist_matrix
from engine.open_path import load_scene
from engine.points.rasterize import gather_features, rasterize_points
from tests.helpers import write_colmap_with_photos
from tests.test_npbg import SMALL, tiny_cfg


def _textured_planes(n: int, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """(N, 3) points on a floor, a back wall and a box face, with (N, 3) checker colours."""
    rng = np.random.default_rng(seed)
    pts, cols = [], []
    for o, a, b in (
        ([-1, 1, -1], [2, 0, 0], [0, 0, 2]),
        ([-1, -1, 1], [2, 0, 0], [0, 2, 0]),
        ([-0.3, 0.2, -0.3], [0.6, 0, 0], [0, 0.8, 0]),
    ):
        uv = rng.uniform(0, 1, (n // 3, 2))
        pts.append(np.array(o) + uv[:, :1] * np.array(a) + uv[:, 1:] * np.array(b))
        check = (np.floor(uv[:, 0] * 8) + np.floor(uv[:, 1] * 8)) % 2
        cols.append(0.2 + check[:, None] * [0.7, 0.3, 0.2] + 0.15 * np.sin(uv[:, :1] * 20))
    P = torch.tensor(np.concatenate(pts), dtype=torch.float32)
    return P, torch.tensor(np.clip(np.concatenate(cols), 0, 1), dtype=torch.float32)


def _perturbed(cam: Camera, deg: float, shift, seed: int = 1) -> Camera:
    T = np.eye(4)
    T[:3, :3] = rotation_about(np.random.default_rng(seed).normal(size=3), np.radians(deg))
    T[:3, 3] = shift
    return cam.with_pose(T @ cam.world_to_camera)


def _reprojection_px(points: np.ndarray, a: Camera, b: Camera) -> float:
    """Median image distance between the points' projections by two cameras."""
    ua, _ = a.project(points)
    ub, _ = b.project(points)
    return float(np.median(np.linalg.norm(ua - ub, axis=1)))


def test_twist_is_a_rigid_transform():
    T = twist_matrix(torch.tensor([0.1, -0.2, 0.05, 1.0, 2.0, -0.5], dtype=torch.float64))
    R = T[:3, :3]
    assert torch.allclose(R @ R.T, torch.eye(3, dtype=torch.float64), atol=1e-9)
    assert torch.allclose(torch.linalg.det(R), torch.tensor(1.0, dtype=torch.float64))
    assert torch.allclose(T[3], torch.tensor([0, 0, 0, 1.0], dtype=torch.float64))


def test_alignment_undoes_a_known_camera_perturbation():
    P, C = _textured_planes(90_000)

    def render(cam):
        (r,) = rasterize_points(P, cam, 2)
        return gather_features(C, r), r.depth

    true = Camera.look_at([0.3, -0.4, -3], [0, 0, 0], [0, -1, 0], 240, 180, 50)
    photo, _ = render(true)
    bad = _perturbed(true, 1.2, [0.03, -0.02, 0.04])
    sample = P[::40].numpy()
    before = _reprojection_px(sample, true, bad)
    fixed, info = align_camera(render, photo, bad, scene_scale=3.0)
    after = _reprojection_px(sample, true, fixed)
    assert before > 5 and after < 0.25 * before and after < 1.0, (before, after, info)
    assert info["loss_after"] < info["loss_before"]
    # An already aligned camera stays (nearly) where it is.
    same, _ = align_camera(render, photo, true, scene_scale=3.0)
    assert _reprojection_px(sample, true, same) < 0.5


def test_fit_refines_a_perturbed_training_camera_and_resume_keeps_it(tmp_path):
    root, _ = write_colmap_with_photos(tmp_path / "cap", n_views=9, n_points=2000)
    scene = load_scene(root)
    cfg = tiny_cfg(60)
    cfg.pose_every = 0
    target = make_target(scene, cfg, net_cfg=SMALL)
    fitter = Fitter([target], cfg, tmp_path / "fit")
    fitter.run(progress=False)  # a rendering that resembles the photos
    view = target.views.train[2]
    true = view.camera
    view.camera = _perturbed(true, 2.0, [0.0, 0.0, 0.0])
    pts = target.model.points.numpy()[::5]
    before = _reprojection_px(pts, true, view.camera)
    info = fitter.refine_poses()
    after = _reprojection_px(pts, true, view.camera)
    assert after < 0.5 * before, (before, after, info)
    assert fitter.pose_corrections[view.name] > 0.5
    # Refined poses are part of the checkpoint: a resumed fit starts from them.
    fitter.save_checkpoint()
    again = Fitter([make_target(scene, cfg, net_cfg=SMALL)], cfg, tmp_path / "fit")
    assert again.load_checkpoint()
    back = next(v for v in again.targets[0].views.train if v.name == view.name)
    assert np.allclose(back.camera.world_to_camera, view.camera.world_to_camera)
