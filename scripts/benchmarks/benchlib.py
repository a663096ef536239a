"""Helpers the ``bench_*.py`` scripts share: package versions and what machine a figure came from."""

from __future__ import annotations

import os
import platform
from importlib import metadata
from pathlib import Path
from typing import Any


def package_version(pkg: str) -> str | None:
    try:
        return metadata.version(pkg)
    except metadata.PackageNotFoundError:
        return None


def cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def machine_info(packages: tuple[str, ...], device: Any = None) -> dict[str, Any]:
    """Where a figure came from: CPU, Python, the named packages' versions and, given a device,
    torch's view."""
    info: dict[str, Any] = {
        "cpu_count": os.cpu_count(),
        "affinity_cpus": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None,
        "platform": platform.platform(),
        "python": platform.python_version(),
        **{pkg: package_version(pkg) for pkg in ("torch", *packages, "emotic-mm")},
        "device_name": cpu_model(),
    }
    if device is not None:
        import torch

        info.update(
            device=str(device),
            torch_threads=torch.get_num_threads(),
            torch_interop_threads=torch.get_num_interop_threads(),
        )
        if getattr(device, "type", str(device)) == "cuda":
            info.update(
                device_name=torch.cuda.get_device_name(device),
                cuda=torch.version.cuda,
                cudnn=torch.backends.cudnn.version(),
            )
    return info


def sync(device: Any) -> None:
    """Wait for queued CUDA work, so a timer measures the work and not its launch."""
    if getattr(device, "type", None) == "cuda":
        import torch

        torch.cuda.synchronize(device)


def write_report(
    path: str | os.PathLike, benchmark: str, machine: dict[str, Any], fields: dict[str, Any]
) -> None:
    """The benchmark's JSON: what ran, when, how it was started, on which machine, then its own fields;
    written next to its final name and renamed into place."""
    import shlex
    import sys
    import time

    from emotic_mm.fsutil import write_json_atomic

    write_json_atomic(
        Path(path),
        {
            "benchmark": benchmark,
            "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            "command": shlex.join([sys.executable, *sys.argv]),
            "cwd": os.getcwd(),
            "machine": machine,
            **fields,
        },
    )


def load_checkpoint_store(checkpoint: str | os.PathLike, store: str | os.PathLike | None, device: Any):
    """(model in eval mode, its training config, its meta.json, the store as the model reads it) — the one
    way the bench scripts open a checkpoint, exactly as the stages do (``store_for_model``: fit checks,
    re-tokenising)."""
    from omegaconf import OmegaConf

    from emotic_mm.data.access import store_for_model
    from emotic_mm.models.loading import load_model

    model, model_cfg, meta = load_model(Path(checkpoint), device)
    model.eval()
    cfg = OmegaConf.merge(model_cfg, {"data": {"prepared_dir": str(store or model_cfg.data.prepared_dir)}})
    return model, model_cfg, meta, store_for_model(cfg, model_cfg, Path(checkpoint))
