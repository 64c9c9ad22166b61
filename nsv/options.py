"""Options several commands share, each declared once (its flag, its help)."""

from __future__ import annotations

import argparse
import inspect
from collections.abc import Callable


def command_parser(command: Callable, prog: str | None = None) -> argparse.ArgumentParser:
    """The parser of ``cmd_<name>``: ``nsv <name>``, described by the function's docstring (the
    command's help is written once, where the command is)."""
    name = command.__name__.removeprefix("cmd_").replace("_", "-")
    return argparse.ArgumentParser(prog=prog or f"nsv {name}",
                                   description=inspect.getdoc(command))  # fmt: skip


def add_device(p: argparse.ArgumentParser) -> None:
    p.add_argument("--device", help="cpu, cuda or cuda:N (default: CUDA when available)")


def add_resume(p: argparse.ArgumentParser) -> None:
    p.add_argument("--resume", action="store_true",
                   help="continue an interrupted run from the checkpoint in its output folder")  # fmt: skip


def add_json(p: argparse.ArgumentParser) -> None:
    p.add_argument("--json", help="also write the results to this JSON file")


def add_data_out(p: argparse.ArgumentParser, data: str) -> None:
    """A training command's data folder (``data``: what it holds) and its required --out."""
    p.add_argument("data", help=data)
    p.add_argument("--out", required=True, help="output folder: the model and its checkpoint")


def add_choice(p: argparse.ArgumentParser, name: str, choices: dict[str, str]) -> None:
    """A positional ``name`` whose values and their meanings are one table ({value: what})."""
    p.add_argument(name, choices=list(choices),
                   help="; ".join(f"{k}: {v}" for k, v in choices.items()))  # fmt: skip
