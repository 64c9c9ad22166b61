"""The render modes the viewer draws with OpenGL itself, each one module with its own
``register`` call (engine.modes holds the registry). Importing this registers them; the main
window and ``nsv render`` do, before listing the modes."""

import viewer.gl.gaussians  # noqa: F401  (Gaussian splats, key G)
