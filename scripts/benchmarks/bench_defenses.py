"""Benchmark the defenses: certification throughput and the time cost of input smoothing.

* **Certification** of a ``defense=ablation`` checkpoint: persons certified per second at ``--samples``
  ablated views each (plus ``--selection`` for the selection round), batched across persons and samples
  (``recipes/certification.py``), against the same work one person at a time. Their certificates must be
  identical (a person's votes never depend on the batch it is certified in); the script checks it.
* **Certification against the plain forward**: ablated views per second of the certification (votes,
  sampling, bookkeeping) over those of the bare model forward on ablated views of the same persons, in
  chunks of the same size, in the same run (target: at least 0.9).
* **Smoothing**: the forward time of the model's image encoder on ``--batch`` working views without a
  defense, with ``MedianFilter(3)`` and with ``BitDepth(4)`` inside it; the ratios are the cost.

    python scripts/benchmarks/bench_defenses.py --checkpoint <run trained with defense=ablation>/best \
        --persons 32 --samples 200
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Subset

sys.path.insert(0, str(Path(__file__).resolve().parent))
from benchlib import load_checkpoint_store, machine_info, sync, write_report  # noqa: E402


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument(
        "--checkpoint", type=Path, required=True, help="a checkpoint trained with defense=ablation"
    )
    p.add_argument("--store", type=Path, default=None, help="default: the checkpoint's data.prepared_dir")
    p.add_argument("--split", default="test")
    p.add_argument("--persons", type=int, default=32)
    p.add_argument("--samples", type=int, default=200)
    p.add_argument("--selection", type=int, default=20)
    p.add_argument("--batch", type=int, default=64, help="working views per timed smoothing forward")
    p.add_argument("--repeats", type=int, default=20)
    p.add_argument("--device", default="auto")
    p.add_argument("--out", type=Path, default=Path("bench_results/defenses.json"))
    args = p.parse_args()
    from rich.console import Console
    from rich.table import Table

    from emotic_mm.data.access import dataset
    from emotic_mm.defenses.smoothing import BitDepth, MedianFilter
    from emotic_mm.models.warming import warm_text_features
    from emotic_mm.recipes.certification import certify_persons, settings_for
    from emotic_mm.training.runtime import select_device

    device = select_device(args.device)
    model, model_cfg, _, store = load_checkpoint_store(args.checkpoint, args.store, device)
    modalities = [str(m) for m in model_cfg.model.modalities]
    full = dataset(store, args.split, modalities)
    warm_text_features(model, [full])
    settings = settings_for(model_cfg, {"samples": args.samples, "selection_samples": args.selection})

    data = Subset(full, range(min(args.persons, len(full))))  # the first --persons of the split
    certify_persons(model, Subset(full, [0]), settings, device)  # untimed warm-up
    timings = {}
    results = {}
    for label, chunk in (("batched", 64), ("one person at a time", 1)):
        sync(device)
        t0 = time.perf_counter()
        results[label] = certify_persons(model, data, settings, device, chunk=chunk)
        sync(device)
        timings[label] = time.perf_counter() - t0
    same = all(
        np.array_equal(getattr(results["batched"][0], k), getattr(results["one person at a time"][0], k))
        for k in ("prediction", "count", "radius")
    )

    plain = plain_forward_views_per_s(
        model, full, settings, device, n_views=len(data) * (args.samples + args.selection) // 4
    )
    certify_views = len(data) * (args.samples + args.selection) / timings["batched"]

    encoder = model.image_encoders["context"]
    views = encoder.working_view(
        full.__getitems__(list(range(min(args.batch, len(full)))))["context"].to(device)
    )
    original = encoder.input_defense
    variants = {
        "ablation (as trained)": original,
        "+ median 3": torch.nn.Sequential(MedianFilter(3), original),
        "+ squeeze 4 bits": torch.nn.Sequential(BitDepth(4), original),
    }
    times: dict[str, list[float]] = {label: [] for label in variants}
    with torch.inference_mode():
        # Round-robin over the variants, so that drift of a shared CPU's clock or load hits all of them alike
        # (timing them one after the other once made the squeezed encoder look faster than the plain one).
        for _ in range(args.repeats + 1):
            for label, module in variants.items():
                encoder.input_defense = module
                sync(device)
                t0 = time.perf_counter()
                encoder(views)
                sync(device)
                times[label].append(time.perf_counter() - t0)
    encoder.input_defense = original
    smoothing = {label: float(np.median(ts[1:])) for label, ts in times.items()}  # the first round warms up

    n = len(data)
    table = Table(
        title=f"defenses · {n} persons · n0 = {args.selection}, n = {args.samples} ablated views each"
    )
    table.add_column("what")
    table.add_column("value")
    for label, seconds in timings.items():
        table.add_row(f"certify, {label}", f"{n / seconds:.2f} persons/s ({seconds:.1f} s)")
    table.add_row("batched / one at a time", f"{timings['one person at a time'] / timings['batched']:.2f}×")
    table.add_row("identical certificates", "yes" if same else "NO")
    table.add_row("certify views/s (batched)", f"{certify_views:.1f}")
    table.add_row("plain forward views/s (same chunks)", f"{plain:.1f}")
    table.add_row("certify / plain forward", f"{certify_views / plain:.2f}")
    base = smoothing["ablation (as trained)"]
    for label, seconds in smoothing.items():
        table.add_row(
            f"encoder forward, {label}",
            f"{seconds * 1000:.1f} ms / {len(views)} views ({seconds / base:.2f}×)",
        )
    Console().print(table)
    write_report(
        args.out,
        "defenses",
        machine_info((), device),
        {
            "args": {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()},
            "persons": n,
            "certify_seconds": timings,
            "persons_per_s": {k: n / v for k, v in timings.items()},
            "identical_certificates": same,
            "smoothing_seconds": smoothing,
            "certify_views_per_s": certify_views,
            "plain_forward_views_per_s": plain,
            "certify_over_plain": certify_views / plain,
        },
    )


@torch.inference_mode()
def plain_forward_views_per_s(
    model: torch.nn.Module, data, settings, device: torch.device, n_views: int
) -> float:
    """The bare model forward on ablated context views (fixed body and text features), in the chunks the
    certification uses: the ceiling its views/s is measured against."""
    from emotic_mm.batching import rows_per_forward
    from emotic_mm.data.batches import model_inputs, to_device
    from emotic_mm.defenses.ablation import draw_positions, encode, keep_mask
    from emotic_mm.recipes.certification import fixed_features

    rows = rows_per_forward(settings.max_batch, device, 512)
    ids = list(range(min(len(data), rows)))
    inputs = to_device(model_inputs(data.__getitems__(ids)), device)
    view = model.image_encoders["context"].working_view(inputs["context"])
    fixed = fixed_features(model, inputs, settings.keep, settings.seed, ids)
    owner = torch.arange(rows, device=device) % len(ids)
    d = view.shape[-1] * view.shape[-2]
    mask = keep_mask(draw_positions(rows, d, settings.keep, torch.Generator().manual_seed(0)), d).to(device)
    ablated = encode(view[owner], mask)
    batch = {"context": ablated, **{k: v[owner] for k, v in fixed.items()}}
    model(batch)  # warm-up
    sync(device)
    t0 = time.perf_counter()
    done = 0
    while done < n_views:
        model(batch)["logits"].argmax(1)
        done += rows
    sync(device)
    return done / (time.perf_counter() - t0)


if __name__ == "__main__":
    main()
