"""The ``emotic-mm`` command in a subprocess, offline, from the repository root unless told otherwise."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
EMOTIC_MM = str(Path(sys.executable).parent / "emotic-mm")
OFFLINE = {"HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}


def cli_env(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """This process's environment, offline, plus ``extra``."""
    return {**os.environ, **OFFLINE, **(extra or {})}


def run_cli(
    args: Sequence[str], cwd: Path | None = None, timeout: float = 120, env: Mapping[str, str] | None = None
) -> subprocess.CompletedProcess:
    """``emotic-mm *args`` to completion; stdout and stderr captured as text."""
    return subprocess.run(
        [EMOTIC_MM, *args],
        cwd=str(cwd or REPO),
        capture_output=True,
        text=True,
        timeout=timeout,
        env=cli_env(env),
    )


def run_cli_all(
    runs: Sequence[Sequence[str]], cwds: Sequence[Path | None] | None = None, timeout: float = 300
) -> list[subprocess.CompletedProcess]:
    """Several ``emotic-mm`` runs started together, so their start-ups overlap; results in order."""
    started = [
        subprocess.Popen(
            [EMOTIC_MM, *args],
            cwd=str(cwd or REPO),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=cli_env(),
        )
        for args, cwd in zip(runs, cwds or [None] * len(runs), strict=True)
    ]
    done = []
    for proc in started:
        out, err = proc.communicate(timeout=timeout)
        done.append(subprocess.CompletedProcess(proc.args, proc.returncode, out, err))
    return done
