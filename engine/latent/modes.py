"""Latent mode: HoloGAN / RenderNet sliders in the Latent dock, shown instead of the scene."""

from __future__ import annotations

from engine.mode_registry import Mode, register

register(Mode("latent", "Latent (HoloGAN / RenderNet)", "Ctrl+L", "latent", panel="Latent"))
