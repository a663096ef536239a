"""Benchmark how a fixed image backbone runs at inference: memory layout × BatchNorm folding × chunk size.

What it measures
    Images/s of the default encoder's backbone (``model/image_encoder=efficientnet_lite0``: the shipped
    EfficientNet-Lite0, frozen) on random pictures at each working resolution (context 160 px, body
    128 px), under ``torch.inference_mode``, for

    * layout: ``NCHW`` (contiguous) or ``NHWC`` (``channels_last``, the default);
    * ``folded``: the BatchNorms folded into the convolutions (:mod:`emotic_mm.models.folding`), as every
      no-gradient pass of a fixed backbone runs (attack queries, certification views, memoised features);
    * rows per forward pass (``--chunks``): the attack's and the certification's ``max_batch``.

    Every variant is timed in round-robin (``--repeats`` rounds, the median reported), so drift of a shared
    machine's load hits all of them alike; ratios are against NCHW, unfolded, at the largest chunk (the
    settings before this benchmark existed: 256 rows, contiguous, unfolded).

How to run
    .venv/bin/python scripts/benchmarks/bench_inference.py  # --chunks 8 16 64 256 --repeats 5 --seconds 2
"""

from __future__ import annotations

import argparse
import copy
import itertools
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from benchlib import machine_info, sync, write_report  # noqa: E402


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--chunks", type=int, nargs="+", default=[8, 16, 64, 256])
    p.add_argument(
        "--sizes", type=int, nargs="+", default=[160, 128], help="working resolutions (context, body)"
    )
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--seconds", type=float, default=2.0, help="per timed measurement")
    p.add_argument("--device", default="auto")
    p.add_argument("--out", type=Path, default=Path("bench_results/inference.json"))
    args = p.parse_args()
    from rich.console import Console
    from rich.table import Table

    from emotic_mm.models.backbones import build_backbone
    from emotic_mm.models.folding import checked_fold
    from emotic_mm.testkit import compose_cfg
    from emotic_mm.training.runtime import select_device

    device = select_device(args.device)
    block = compose_cfg("train").model.image_encoder
    base = build_backbone(str(block.name), block.get("weights"), dict(block.get("kwargs") or {})).module
    base = base.to(device).eval().requires_grad_(False)
    variants = {}
    for layout, folded in itertools.product(("NCHW", "NHWC"), (False, True)):
        module = base
        if layout == "NHWC":
            module = copy.deepcopy(base).to(memory_format=torch.channels_last)
        if folded:
            probe = torch.rand(2, 3, args.sizes[0], args.sizes[0], device=device) * 4 - 2
            module = checked_fold(module, probe, channels_last=layout == "NHWC")
        variants[(layout, folded)] = module

    results: dict[tuple, list[float]] = {}
    with torch.inference_mode():
        for _ in range(args.repeats):
            for size, chunk, ((layout, folded), module) in itertools.product(
                args.sizes, args.chunks, variants.items()
            ):
                x = torch.randn(chunk, 3, size, size, device=device)
                if layout == "NHWC":
                    x = x.contiguous(memory_format=torch.channels_last)
                module(x)
                sync(device)
                t0, done = time.perf_counter(), 0
                while time.perf_counter() - t0 < args.seconds:
                    module(x)
                    done += chunk
                sync(device)
                results.setdefault((size, chunk, layout, folded), []).append(
                    done / (time.perf_counter() - t0)
                )

    rows = []
    for size in args.sizes:
        reference = float(np.median(results[(size, max(args.chunks), "NCHW", False)]))
        for chunk, (layout, folded) in itertools.product(args.chunks, variants):
            value = float(np.median(results[(size, chunk, layout, folded)]))
            rows.append(
                {
                    "size": size,
                    "chunk": chunk,
                    "layout": layout,
                    "folded": folded,
                    "images_per_s": value,
                    "ratio": value / reference,
                }
            )
    table = Table(
        title=f"fixed {block.name} backbone at inference · {device} · images/s (median of {args.repeats})"
    )
    for column in ("px", "rows", "layout", "BN folded", "images/s", "× NCHW unfolded, largest chunk"):
        table.add_column(column, justify="right")
    for r in rows:
        table.add_row(
            str(r["size"]),
            str(r["chunk"]),
            r["layout"],
            "yes" if r["folded"] else "no",
            f"{r['images_per_s']:.1f}",
            f"{r['ratio']:.2f}",
        )
    Console().print(table)
    write_report(
        args.out,
        "inference",
        machine_info((), device),
        {
            "args": {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()},
            "encoder": str(block.name),
            "weights": str(block.get("weights")),
            "rows": rows,
        },
    )


if __name__ == "__main__":
    main()
