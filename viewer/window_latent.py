"""Latent mode in the main window: the HoloGAN / RenderNet view instead of the scene viewport
(a mixin of :class:`viewer.main_window.MainWindow`)."""

from __future__ import annotations

from pathlib import Path


class LatentActions:
    """Needs the window's controls, viewport, latent_dock, latent_panel, rendernet_panel,
    latent_tabs, latent_view, show_error and _mode_before_latent."""

    def set_latent_mode(self, on: bool, model: str | Path | None = None) -> None:
        """Latent mode (a registered mode): the HoloGAN image instead of the scene viewport;
        off returns to the mode used before."""
        self._latent_model = model
        if on and self.viewport.settings.mode == "latent":
            self._show_latent()  # already shown: load the requested model
        else:
            self.controls.set_mode("latent" if on else self._mode_before_latent)

    def _show_latent(self) -> None:
        from engine.assets import HOLOGAN

        model, self._latent_model = getattr(self, "_latent_model", None), None
        self.latent_dock.show()
        self.latent_dock.raise_()
        if model is not None or self.latent_panel.renderer is None:
            folder = Path(model) if model is not None else HOLOGAN
            try:
                self.latent_panel.load_model(folder)
            except Exception as e:
                self.latent_view.message = f"No HoloGAN model: {e}"
                self.latent_view.update()
                self.show_error(str(e))

    def _latent_tab_changed(self, index: int) -> None:
        """Switching tabs shows that model's image; RenderNet loads the bundled model and the
        bundled demo mesh the first time."""
        from engine.assets import RENDERNET, RENDERNET_DEMO_MESH

        rn = self.latent_tabs.widget(index) is self.rendernet_panel
        self.rendernet_panel.active, self.latent_panel.active = rn, not rn
        if rn:
            panel = self.rendernet_panel
            if panel.renderer is None:
                try:
                    panel.load_model(RENDERNET)
                    panel.set_mesh(RENDERNET_DEMO_MESH)
                except Exception as e:
                    self.latent_view.message = f"No RenderNet model: {e}"
                    self.latent_view.update()
                    return
            panel.shown_id = -1
            panel.request()
        else:
            self.latent_panel.shown_id = -1
            self.latent_panel.request()
