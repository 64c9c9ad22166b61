"""Synthetic scenes with exact ground truth (meshes, procedural materials, headless renders)."""
