"""Dock panels: one per tool (controls, registered views, plots)."""
