"""Benchmark the k-schedule: the success-vs-k curve in one pass per person vs one separate run per k.

Same model, same persons, same per-k budget and seed. The one-pass curve attacks every person at the
smallest k and only the persons not yet fooled at each larger k; the separate runs attack every person
at every k. Reported: wall time and model queries of both, the speed-up, and per k the success of both
with Wilson 95 % intervals. Success is monotone in k (a person fooled with k pixels is fooled with more),
so the one-pass curve should be at least the separate runs' success, within their intervals; the script
says whether it is.

    python scripts/benchmarks/bench_schedule.py --checkpoint outputs/quality/train-image/best --persons 100 \
        --ks 1,3,10,30,100 --budget 1000 --algorithm rs [--store data/prepared/synthetic_seed0]
"""

from __future__ import annotations

import argparse
import sys
import time
from dataclasses import replace
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from benchlib import load_checkpoint_store, machine_info, sync, write_report  # noqa: E402


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--checkpoint", type=Path, required=True)
    p.add_argument("--store", type=Path, default=None, help="default: the checkpoint's data.prepared_dir")
    p.add_argument("--split", default="test")
    p.add_argument("--persons", type=int, default=100)
    p.add_argument("--ks", default="1,3,10,30,100")
    p.add_argument("--budget", type=int, default=1000, help="queries per person per k")
    p.add_argument("--population", type=int, default=40)
    p.add_argument("--algorithm", choices=("de", "rs"), default="rs")
    p.add_argument("--resolution", choices=("stored", "model"), default="model")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", default="auto")
    p.add_argument("--out", type=Path, default=Path("bench_results/schedule.json"))
    args = p.parse_args()
    from rich.console import Console
    from rich.table import Table

    from emotic_mm.attacks.pixel import PixelAttack, PixelAttackSettings
    from emotic_mm.data.access import dataset
    from emotic_mm.data.batches import model_inputs, to_device
    from emotic_mm.models.warming import warm_text_features
    from emotic_mm.recipes.pixel_evasion import working_views
    from emotic_mm.report import stats
    from emotic_mm.training.runtime import select_device

    ks = sorted({int(k) for k in args.ks.split(",")})
    device = select_device(args.device)
    model, model_cfg, _, store = load_checkpoint_store(args.checkpoint, args.store, device)
    modalities = [str(m) for m in model_cfg.model.modalities]
    data = dataset(store, args.split, modalities)
    warm_text_features(model, [data])
    ids = list(range(min(args.persons, len(data))))
    inputs = to_device(model_inputs(data.__getitems__(ids)), device)
    if args.resolution == "model":
        inputs = working_views(model, inputs)
    settings = PixelAttackSettings(
        pixels=ks[-1],
        algorithm=args.algorithm,
        budget=args.budget,
        population=args.population,
        seed=args.seed,
    )
    n = len(ids)
    # untimed warm-up: first-call costs (allocator, oneDNN kernels, feature memos) are nobody's
    PixelAttack(model, replace(settings, pixels=ks[0], budget=2 * args.population), device).run(inputs, None)

    sync(device)
    t0 = time.perf_counter()
    curve = PixelAttack(model, settings, device).run_schedule(inputs, ks)
    sync(device)
    one_pass_s = time.perf_counter() - t0
    separate, separate_s, separate_queries = [], 0.0, 0
    for k in ks:
        engine = PixelAttack(model, replace(settings, pixels=k), device)
        sync(device)
        t0 = time.perf_counter()
        result = engine.run(inputs, curve.clean_top1.to(device))
        sync(device)
        separate_s += time.perf_counter() - t0
        separate_queries += int(result.queries.sum())
        separate.append(result.success.numpy())

    rows = []
    for j, k in enumerate(ks):
        ours, theirs = curve.success[:, j].numpy(), separate[j]
        # paired: the same persons under both; "at least the separate runs" fails only when the separate
        # runs fool significantly more persons (exact McNemar on the persons only one of them fooled)
        test = stats.mcnemar_test(theirs, ours)
        rows.append(
            {
                "pixels": k,
                "one_pass_successes": int(ours.sum()),
                "one_pass_ci": list(stats.wilson(ours.sum(), n)),
                "separate_successes": int(theirs.sum()),
                "separate_ci": list(stats.wilson(theirs.sum(), n)),
                "only_separate": test.only_a,
                "only_one_pass": test.only_b,
                "mcnemar_p": test.pvalue,
                "one_pass_at_least_separate": not (test.only_a > test.only_b and test.pvalue < stats.ALPHA),
            }
        )
    speedup = separate_s / max(one_pass_s, 1e-9)
    needed = stats.median_needed(
        np.where(curve.pixels_needed.numpy() > 0, curve.pixels_needed.numpy(), np.nan)
    )
    table = Table(
        title=f"k-schedule · {args.algorithm} · {n} persons · budget {args.budget}/k · "
        f"one pass {one_pass_s:.1f} s vs separate {separate_s:.1f} s → {speedup:.2f}×"
    )
    for col in (
        "k",
        "one pass: success (95 % CI)",
        "separate runs: success (95 % CI)",
        "only one pass / only separate (McNemar p)",
        "one pass ≥ separate",
    ):
        table.add_column(col)
    for r in rows:
        table.add_row(
            str(r["pixels"]),
            f"{r['one_pass_successes']}/{n} [{r['one_pass_ci'][0]:.2f}, {r['one_pass_ci'][1]:.2f}]",
            f"{r['separate_successes']}/{n} [{r['separate_ci'][0]:.2f}, {r['separate_ci'][1]:.2f}]",
            f"{r['only_one_pass']} / {r['only_separate']} (p = {r['mcnemar_p']:.3f})",
            "yes" if r["one_pass_at_least_separate"] else "NO",
        )
    Console().print(table)
    write_report(
        args.out,
        "k_schedule",
        machine_info((), device),
        {
            "args": {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()},
            "persons": n,
            "one_pass_seconds": one_pass_s,
            "separate_seconds": separate_s,
            "speedup": speedup,
            "one_pass_queries": int(curve.queries.sum()),
            "separate_queries": separate_queries,
            "pixels_needed_median": needed if np.isfinite(needed) else None,  # None: more than the largest k
            "rows": rows,
        },
    )


if __name__ == "__main__":
    main()
