"""Options several commands share, each declared once (its flag, its help)."""

from __future__ import annotations

import argparse


def add_device(p: argparse.ArgumentParser) -> None:
    p.add_argument("--device", help="cpu, cuda or cuda:N (default: CUDA when available)")


def add_resume(p: argparse.ArgumentParser) -> None:
    p.add_argument("--resume", action="store_true",
                   help="continue an interrupted run from the checkpoint in its output folder")  # fmt: skip


def add_json(p: argparse.ArgumentParser) -> None:
    p.add_argument("--json", help="also write the results to this JSON file")
