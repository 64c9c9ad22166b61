"""The object renders' background colour, shared by the data renderer and the latent view
(its own module: the data renderer imports trimesh, 0.7 s the viewer need not spend at start)."""

BACKGROUND = (0.86, 0.86, 0.88)  # light grey: silhouettes separate from it by a threshold
