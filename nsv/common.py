"""Helpers every command shares: sizes, cameras, output folders, resume and Ctrl+C."""

from __future__ import annotations

import argparse
import json
from contextlib import contextmanager
from pathlib import Path

from engine.errors import NsvError


def parse_size(text: str) -> tuple[int, int]:
    try:
        w, h = (int(v) for v in text.lower().split("x"))
        if w <= 0 or h <= 0 or w > 16384 or h > 16384:
            raise ValueError
    except ValueError:
        raise NsvError(f"--size {text!r}: expected WxH, e.g. 1280x720") from None
    return w, h


def resolve_camera(scene, spec: str, size: tuple[int, int] | None):
    """Turn a --camera argument into a Camera (see ``nsv render --help``)."""
    from engine.camera import Camera
    from engine.navigation import home_navigator

    if spec == "default":
        w, h = size or (960, 640)
        return home_navigator(scene).camera(w, h)
    if spec.endswith(".json"):
        path = Path(spec)
        try:
            cam = Camera.from_dict(json.loads(path.read_text()))
        except FileNotFoundError:
            raise NsvError(f"{path}: no such camera file") from None
        except (json.JSONDecodeError, KeyError, TypeError, ValueError) as e:
            raise NsvError(f"{path}: not a valid camera file ({e})") from None
        return cam.resized(*size) if size else cam
    names = [v.name for v in scene.views]
    if spec.isdigit() and int(spec) < len(scene.views):
        cam = scene.views[int(spec)].camera
    elif spec in names:
        cam = scene.views[names.index(spec)].camera
    else:
        have = f"0..{len(names) - 1} or an image name" if names else "none (the scene has no views)"
        raise NsvError(f"--camera {spec!r}: no such registered view; available: {have}")
    return cam.resized(*size) if size else cam


def _mark_given(namespace: argparse.Namespace, dest: str) -> None:
    namespace.given_options = getattr(namespace, "given_options", set()) | {dest}


class _Store(argparse.Action):
    """Stores the value, as argparse's default action, and records that it was given."""

    def __call__(self, parser, namespace, values, option_string=None) -> None:
        setattr(namespace, self.dest, values)
        _mark_given(namespace, self.dest)


class _StoreBool(argparse.BooleanOptionalAction):
    """--name / --no-name, recording that it was given."""

    def __call__(self, parser, namespace, values, option_string=None) -> None:
        super().__call__(parser, namespace, values, option_string)
        _mark_given(namespace, self.dest)


def was_given(a: argparse.Namespace, name: str) -> bool:
    """Whether the command line set config field ``name`` (an ``add_config_args`` option), in
    any spelling argparse accepts (``--steps=9``, the abbreviation ``--step 9``), rather than
    leaving its default."""
    return name in getattr(a, "given_options", ())


def add_config_args(p, cls, names: list[str], help: dict[str, str] | None = None,
                    flags: dict[str, str] | None = None,
                    choices: dict[str, list[str]] | None = None) -> None:  # fmt: skip
    """``--field-name`` options for the scalar fields ``names`` of config dataclass ``cls``, with
    its defaults: each setting is declared once, in the dataclass (``was_given`` tells whether
    the command line set one). ``flags``: another option
    name for a field (its established spelling on the command line); ``choices``: the values a
    field accepts."""
    import dataclasses

    fields = {f.name: f for f in dataclasses.fields(cls)}
    default = cls()
    for name in names:
        value = getattr(default, name)
        flag = (flags or {}).get(name, "--" + name.replace("_", "-"))
        text = (help or {}).get(name, "")
        if isinstance(value, bool):  # --name / --no-name
            p.add_argument(flag, dest=name, action=_StoreBool, default=value,
                           help=text + f" (default {'on' if value else 'off'})")  # fmt: skip
            continue
        kind = type(value) if fields[name].type not in ("float", float) else float
        p.add_argument(flag, dest=name, action=_Store, type=kind, default=value,
                       metavar=None if name in (choices or {}) else flag[2:].replace("-", "_").upper(),
                       choices=(choices or {}).get(name), help=text + f" (default {value})")  # fmt: skip


def config_from_args(cls, a, names: list[str], **more):
    """The config dataclass ``cls`` from the parsed options ``names`` (plus ``more``)."""
    return cls(**{n: getattr(a, n) for n in names}, **more)


def train(job, out: Path, resume: bool, what: str,
          instead: str = "choose another --out") -> tuple[bool, object]:  # fmt: skip
    """What every training command does once its job is built: resume (or refuse to overwrite;
    ``instead`` is the other way out the message offers), say what trains, run with Ctrl+C
    saving a checkpoint. Returns (finished, what ``job.run()`` returned)."""
    from engine.training import run_interruptible, start_or_resume

    start_or_resume(job, out, resume, instead)
    job.say(what)
    return run_interruptible(job)


def run_training(job, out: Path, resume: bool, what: str) -> int:
    """``train``, then report where the result went. Returns the exit status (130: stopped)."""
    finished, _ = train(job, out, resume, what)
    if not finished:
        return 130
    job.say(f"wrote {out} ({job.step} steps, {job.seconds / 60:.1f} min)")
    return 0


@contextmanager
def cli_progress():
    """A Progress (engine.capture.progress) whose stages show as tqdm bars on stderr, with each
    finished stage's summary printed: what `nsv import` shows, and the other commands when
    opening a scene computes (a capture's points on first open)."""
    from tqdm import tqdm

    from engine.capture.progress import Progress

    bar: list = [None, ""]

    def show(step) -> None:
        if step.stage == "preview":  # the viewer shows it; nothing to print
            return
        if step.stage == "found":
            tqdm.write(f"  {step.info}")
            return
        if step.stage != bar[1]:
            if bar[0] is not None:
                bar[0].close()
            bar[0] = tqdm(total=step.total or None, desc=step.stage, leave=False)
            bar[1] = step.stage
        if step.total:
            bar[0].n = step.done
            bar[0].refresh()

    try:
        yield Progress(show)
    finally:
        if bar[0] is not None:
            bar[0].close()
