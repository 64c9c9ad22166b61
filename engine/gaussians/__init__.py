"""3D Gaussian Splatting scenes (Kerbl et al. 2023): reading their files and the forward
model's per-Gaussian terms (3D covariance, depth order). The viewer
draws them with OpenGL (``viewer.gl.gaussians``); ``nsv render --mode gaussians`` uses the
same drawer offscreen."""

from engine.gaussians.model import Gaussians

__all__ = ["Gaussians"]
