"""Latent 3D-aware generation (HoloGAN) and learned voxel rendering (RenderNet)."""
