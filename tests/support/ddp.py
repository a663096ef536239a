"""torchrun ×2 on CPU (gloo) against one process with the same global batch: the val metrics must match."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

import pytest

from support.cli import cli_env, run_cli


def assert_two_ranks_match_one(overrides: Sequence[str], tmp_path: Path, tolerance: float = 1e-4) -> None:
    """Train ``overrides`` in one process and under ``torchrun --nproc_per_node=2``; compare best val."""
    env = {"OMP_NUM_THREADS": "1"}
    one = run_cli(["train", *overrides, f"hydra.run.dir={tmp_path / 'one'}"], timeout=600, env=env)
    assert one.returncode == 0, one.stderr[-2000:]
    # --standalone: a free port, so parallel test sessions never collide
    two = subprocess.run(
        [
            sys.executable,
            "-m",
            "torch.distributed.run",
            "--standalone",
            "--nproc_per_node=2",
            "-m",
            "emotic_mm.cli",
            "train",
            *overrides,
            f"hydra.run.dir={tmp_path / 'two'}",
        ],
        capture_output=True,
        text=True,
        timeout=600,
        env=cli_env(env),
    )
    assert two.returncode == 0, two.stderr[-2000:]
    a = json.loads((tmp_path / "one" / "train_summary.json").read_text())
    b = json.loads((tmp_path / "two" / "train_summary.json").read_text())
    assert b["world_size"] == 2
    for k in ("map", "dominant_acc", "vad_mae"):
        assert a["best_val"][k] == pytest.approx(b["best_val"][k], abs=tolerance), k
