"""``run.json``: what a run dir needs to be reproduced — seed, command, versions, git commit."""

from __future__ import annotations

import importlib.metadata
import platform
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from emotic_mm.fsutil import is_main_process, write_json_atomic

PACKAGES = (
    "emotic-mm",
    "torch",
    "torchvision",
    "transformers",
    "numpy",
    "scipy",
    "hydra-core",
    "omegaconf",
    "torchmetrics",
    "pillow",
    "tokenizers",
)


def versions() -> dict[str, str]:
    out = {"python": platform.python_version()}
    for name in PACKAGES:
        try:
            out[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            continue
    return out


def git_commit(start: Path | None = None) -> dict[str, Any]:
    """HEAD commit and dirty flag of the checkout holding ``start`` (the cwd by default), if any."""
    cwd = str(start or Path.cwd())
    try:
        head = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=cwd, capture_output=True, text=True, timeout=10, check=True
        ).stdout.strip()
        dirty = (
            subprocess.run(
                ["git", "status", "--porcelain", "--untracked-files=no"],
                cwd=cwd,
                capture_output=True,
                text=True,
                timeout=10,
            ).stdout.strip()
            != ""
        )
        return {"commit": head, "dirty": dirty}
    except (OSError, subprocess.SubprocessError):
        return {"commit": None, "dirty": None}


def output_dir() -> Path:
    """The Hydra run dir of the current job (the cwd when called outside Hydra)."""
    try:
        from hydra.core.hydra_config import HydraConfig

        return Path(HydraConfig.get().runtime.output_dir)
    except (ImportError, ValueError):
        return Path.cwd()


def record_run(stage: str, cfg: Any, seed: int | None, run_dir: Path | None = None, **extra: Any) -> Path:
    """Write ``run.json`` and the fully resolved ``config.yaml`` into the run dir."""
    from omegaconf import OmegaConf

    from emotic_mm.fsutil import write_text_atomic

    run_dir = Path(run_dir or output_dir())
    if not is_main_process():  # under torchrun only rank 0 writes the record
        return run_dir
    write_text_atomic(run_dir / "config.yaml", OmegaConf.to_yaml(cfg, resolve=True))
    source = git_commit(Path(__file__).resolve().parent)
    if source["commit"] is None:
        source = git_commit()
    info = {
        "stage": stage,
        "seed": seed,
        "argv": sys.argv,
        "started": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "host": socket.gethostname(),
        "git": source,
        "versions": versions(),
        **extra,
    }
    write_json_atomic(run_dir / "run.json", info)
    return run_dir
