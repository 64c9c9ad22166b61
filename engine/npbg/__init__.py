"""Neural Point-Based Graphics (Aliev et al., ECCV 2020): per-point learned descriptors,
multi-scale rasterization and a U-Net rendering network, fitted to a scene's photos."""
