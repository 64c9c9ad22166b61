"""The viewport's input: mouse orbit / pan / zoom, fly keys (WASD/QE, Shift faster) and
picking a camera frustum with a click. A mixin of :class:`viewer.viewport.Viewport`: it moves
the viewport's navigator and calls its ``_interacted``; drawing and scheduling live there."""

from __future__ import annotations

import math

import numpy as np
from PySide6.QtCore import QPointF, Qt
from PySide6.QtGui import QKeyEvent, QMouseEvent, QWheelEvent

from engine.navigation import frustum_depth, frustum_scale

ORBIT_RAD_PER_PX = 0.008
LOOK_RAD_PER_PX = 0.004
MOVE_KEYS = {
    Qt.Key_W: (0, 0, 1),
    Qt.Key_S: (0, 0, -1),
    Qt.Key_A: (-1, 0, 0),
    Qt.Key_D: (1, 0, 0),
    Qt.Key_E: (0, 1, 0),
    Qt.Key_Q: (0, -1, 0),
}


class ViewportInput:
    """Input handlers; the viewport provides nav, settings, scene, _interacted, the fly timer
    and clock, ``_keys`` and ``_press``."""

    # --- input ----------------------------------------------------------------------------
    def mousePressEvent(self, e: QMouseEvent) -> None:
        self._press = {
            "pos": e.position(),
            "last": e.position(),
            "button": e.button(),
            "moved": 0.0,
        }
        self.setFocus()

    def mouseMoveEvent(self, e: QMouseEvent) -> None:
        if self._press is None:
            return
        pos: QPointF = e.position()
        dx, dy = pos.x() - self._press["last"].x(), pos.y() - self._press["last"].y()
        self._press["last"] = pos
        self._press["moved"] += abs(dx) + abs(dy)
        button = self._press["button"]
        if button == Qt.LeftButton:
            if self.settings.fly_mode:
                self.nav.look(dx * LOOK_RAD_PER_PX, -dy * LOOK_RAD_PER_PX)
            else:
                self.nav.orbit(dx * ORBIT_RAD_PER_PX, -dy * ORBIT_RAD_PER_PX)
        elif button in (Qt.RightButton, Qt.MiddleButton):
            dpr = self.devicePixelRatioF()
            self.nav.pan(dx * dpr, dy * dpr, self.pixel_size()[1])
        else:
            return
        self._interacted()

    def mouseReleaseEvent(self, e: QMouseEvent) -> None:
        press, self._press = self._press, None
        if press and press["button"] == Qt.LeftButton and press["moved"] < 4:
            idx = self.pick_view(e.position().x(), e.position().y())
            if idx is not None:
                self.jump_to_view(idx)
                self.view_picked.emit(idx)

    def wheelEvent(self, e: QWheelEvent) -> None:
        steps = e.angleDelta().y() / 120.0
        if self.settings.fly_mode:
            self.settings.fly_speed *= 1.2**steps
        else:
            self.nav.zoom(steps)
            self._interacted()

    def keyPressEvent(self, e: QKeyEvent) -> None:
        if e.key() in MOVE_KEYS and not e.isAutoRepeat():
            self._keys.add(e.key())
            if not self._fly_timer.isActive():
                self._fly_clock.start()
                self._fly_timer.start()
            return
        super().keyPressEvent(e)

    def keyReleaseEvent(self, e: QKeyEvent) -> None:
        if e.key() in MOVE_KEYS and not e.isAutoRepeat():
            self._keys.discard(e.key())
            return
        super().keyReleaseEvent(e)

    def focusOutEvent(self, e) -> None:
        self._keys.clear()
        super().focusOutEvent(e)

    def _fly_tick(self) -> None:
        if not self._keys:
            self._fly_timer.stop()
            return
        dt = self._fly_clock.restart() / 1000.0
        move = np.sum([MOVE_KEYS[k] for k in self._keys], axis=0).astype(float)
        self.fly_step(move, dt, fast=bool(self._modifiers() & Qt.ShiftModifier))

    def fly_step(self, move, dt: float, fast: bool = False) -> None:
        """Move by ``move`` (right, up, forward) for ``dt`` seconds at the fly speed."""
        if self.scene is None:
            return
        _, radius = self.scene.bounds()
        speed = self.settings.fly_speed * radius * (4.0 if fast else 1.0)
        self.nav.fly(np.asarray(move, float), speed, dt)
        self._interacted()

    def _modifiers(self):
        from PySide6.QtGui import QGuiApplication

        return QGuiApplication.queryKeyboardModifiers()

    # --- picking --------------------------------------------------------------------------
    def pick_view(self, x: float, y: float, radius_px: float = 14.0) -> int | None:
        """Index of the registered view whose frustum is under widget point (x, y), if any."""
        if self.scene is None or not self.scene.views or not self.settings.show_cameras:
            return None
        dpr = self.devicePixelRatioF()
        cam = self.current_camera()
        depth = frustum_depth(self.scene)
        best, best_d = None, radius_px * dpr
        for i, v in enumerate(self.scene.views):
            c = v.camera
            # The camera centre and the centre of its drawn image plane (FrustumsGL).
            scale = frustum_scale(float(np.linalg.norm(c.position - cam.position)), depth)
            pts = np.stack([c.position, c.position + c.forward * depth * scale])
            uv, z = cam.project(pts)
            for (u, vv), z_cam in zip(uv, z, strict=True):
                if z_cam <= cam.near:
                    continue
                d = math.hypot(u - x * dpr, vv - y * dpr)
                if d < best_d:
                    best, best_d = i, d
        return best
