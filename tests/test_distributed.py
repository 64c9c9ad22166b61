"""Training on two CPU processes with torchrun (gloo) follows the single-process run with the
same global batch."""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import replace

import pytest
import torch
from safetensors.torch import load_file

from tests.conftest import ROOT
from tests.helpers import write_colmap_with_photos


def _fit(root, out, *launcher):
    args = [
        "fit", str(root), "--out", str(out), "--network", "none", "--channels", "8,8,8",
        "--steps", "4", "--batch", "2", "--crop", "48", "--max-side", "96",
        "--eval-every", "1000", "--checkpoint-every", "1000",
    ]  # fmt: skip
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)}
    cmd = [sys.executable, *launcher, "-m", "nsv", *args]
    res = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert res.returncode == 0, res.stderr[-3000:]
    return load_file(str(out / "model.safetensors")), res.stdout


def test_two_process_fit_matches_single_process(tmp_path):
    pytest.importorskip("torch.distributed")
    if not torch.distributed.is_gloo_available():
        pytest.skip("this torch build has no gloo backend")
    root, _ = write_colmap_with_photos(tmp_path / "cap", n_views=9, n_points=2000)
    one, _ = _fit(root, tmp_path / "one")
    torchrun = ["-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2"]
    two, out = _fit(root, tmp_path / "two", *torchrun)
    assert "2 processes" in out
    assert set(one) == set(two)
    for k in one:
        torch.testing.assert_close(two[k], one[k], atol=2e-4, rtol=1e-3, msg=k)
    # They trained: the descriptors moved away from their initialisation.
    from engine.npbg.fit import FitConfig, make_target
    from engine.npbg.network import FIT_NETWORK
    from engine.open_path import load_scene

    cfg = FitConfig(max_side=96)
    net_cfg = replace(FIT_NETWORK, num_scales=3, channels=[8] * 3)  # as `nsv fit` made it
    init = make_target(load_scene(root), cfg, net_cfg=net_cfg)
    moved = (one["descriptors"] - init.model.descriptors.detach()).abs().max()
    assert moved > 1e-3
