"""The keyboard and mouse reference: Help → Keyboard shortcuts, and the README's table (a test
checks that the README shows exactly this table). Mode keys come from the mode registry."""

from __future__ import annotations

from PySide6.QtWidgets import QDialog, QTableWidget, QTableWidgetItem, QVBoxLayout

import viewer.modes  # noqa: F401  (the modes the viewer draws itself are listed too)
from engine.modes import MODES


def shortcut_rows() -> list[tuple[str, str]]:
    """(input, action) rows, in the order the README lists them."""
    digits = [m for m in MODES.values() if m.shortcut.isdigit()]
    others = [m for m in MODES.values() if not m.shortcut.isdigit()]
    mode_row = (
        f"{digits[0].shortcut} … {digits[-1].shortcut}",
        " / ".join(m.label for m in digits),
    )
    return [
        ("left drag", "orbit around the pivot (fly mode: mouse look)"),
        ("right or middle drag", "pan"),
        ("wheel", "zoom toward the pivot (fly mode: fly speed)"),
        ("W A S D / Q E", "fly forward, left, back, right / down, up; Shift = 4× faster"),
        ("Y", "toggle fly mode"),
        ("F / R", "frame all / reset view"),
        mode_row,
        (
            "N / Shift+N",
            "denoiser on/off / next denoiser: ours, Intel OIDN, both side by side "
            "(path trace mode)",
        ),
        ("K / P", "add the current view as a camera-path keyframe / play or stop the path"),
        ("Ctrl+B", "bookmark the view (Camera path dock; remembered per scene)"),
        # Latent shows another view: its key toggles back; the others select their mode.
        *((m.shortcut, m.label + ("" if m.renders_scene else " on/off")) for m in others),
        ("Ctrl+I", "import photos or a capture folder (File → Import video for clips)"),
        ("click a camera frustum", "jump to that photo's view and show the photo"),
        ("Ctrl+S", "screenshot (PNG, plus `NAME.camera.json` for `nsv render --camera`)"),
        ("F1", "this list (Help → Keyboard shortcuts)"),
    ]


def markdown_table() -> str:
    lines = ["| input | action |", "|---|---|"]
    lines += [f"| {k} | {v} |" for k, v in shortcut_rows()]
    return "\n".join(lines)


class ShortcutsDialog(QDialog):
    def __init__(self, parent=None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Keyboard shortcuts")
        rows = shortcut_rows()
        table = QTableWidget(len(rows), 2, self)
        table.setHorizontalHeaderLabels(["Input", "Action"])
        for i, (k, v) in enumerate(rows):
            table.setItem(i, 0, QTableWidgetItem(k))
            table.setItem(i, 1, QTableWidgetItem(v.replace("`", "")))
        table.resizeColumnsToContents()
        table.verticalHeader().setVisible(False)
        self.table = table
        layout = QVBoxLayout(self)
        layout.addWidget(table)
        self.resize(720, 480)
