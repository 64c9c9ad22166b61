"""The project installs as a normal (non-editable) wheel and runs the demo from there.

Builds the wheel, installs it without dependencies into a fresh venv that borrows the test
environment's third-party packages (a .pth line, so the checkout's editable install is not
seen), and renders the bundled demo by name from a folder outside the checkout.
"""

from __future__ import annotations

import subprocess
import sys
import sysconfig
import venv
import zipfile
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("wheel")
    # From a copy of the tracked tree: an in-tree build/ left by an earlier build would carry
    # modules since removed into the wheel.
    import shutil

    src = tmp_path_factory.mktemp("src") / "project"
    files = subprocess.run(["git", "ls-files", "-co", "--exclude-standard"], cwd=ROOT,
                           capture_output=True, text=True, check=True).stdout.split()  # fmt: skip
    for f in files:
        if (ROOT / f).is_file():
            (src / f).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / f, src / f)
    res = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", str(src), "--no-deps", "--no-build-isolation",
         "-q", "-w", str(out)],
        capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert res.returncode == 0, res.stderr[-2000:]
    (whl,) = out.glob("*.whl")
    return whl


def test_wheel_holds_the_assets(wheel):
    names = set(zipfile.ZipFile(wheel).namelist())
    for asset in ROOT.joinpath("assets").rglob("*"):
        if asset.is_file() and "__pycache__" not in asset.parts:
            rel = asset.relative_to(ROOT / "assets").as_posix()
            assert f"nsv_assets/{rel}" in names, rel
    assert wheel.stat().st_size < 100 * 2**20  # tens of MB, not hundreds


def test_installed_wheel_renders_the_demo(wheel, tmp_path):
    env_dir = tmp_path / "venv"
    venv.EnvBuilder(with_pip=False).create(env_dir)
    py = env_dir / "bin" / "python"
    site = subprocess.run(
        [py, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        capture_output=True, text=True, check=True,
    ).stdout.strip()  # fmt: skip
    # Third-party packages from the test environment; not its .pth files (the editable install).
    Path(site, "deps.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    res = subprocess.run(
        [sys.executable, "-m", "pip", "--python", str(py), "install", "--no-deps", "-q",
         str(wheel)],
        capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert res.returncode == 0, res.stderr[-2000:]
    run_dir = tmp_path / "elsewhere"
    run_dir.mkdir()
    where = subprocess.run(
        [py, "-c", "import engine.assets as a; print(a.__file__); print(a.DEMO_SCENE)"],
        capture_output=True, text=True, cwd=run_dir, check=True,
    ).stdout.split()  # fmt: skip
    assert all(str(ROOT) not in w for w in where), where  # the installed copy, not the tree
    out = run_dir / "x.png"
    res = subprocess.run(
        [env_dir / "bin" / "nsv", "render", "demo", "--out", str(out), "--size", "160x120"],
        capture_output=True, text=True, cwd=run_dir, timeout=300,
    )  # fmt: skip
    assert res.returncode == 0, res.stdout[-2000:] + res.stderr[-2000:]
    import imageio.v3 as iio

    img = iio.imread(out)
    assert img.shape[:2] == (120, 160)
    assert np.asarray(img, float).std() > 5  # the demo's points, not a blank frame
