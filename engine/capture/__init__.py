"""Turn a user's capture (photos, a video, a NeRF-style transforms.json) into a scene folder."""
