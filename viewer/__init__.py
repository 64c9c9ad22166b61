"""Neural Scene Viewer desktop client (Qt + moderngl). Depends on ``engine``, never the reverse."""
