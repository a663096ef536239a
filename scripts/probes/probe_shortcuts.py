"""Is there a global-colour shortcut in a store's pictures?

    python scripts/probes/probe_shortcuts.py --store data/prepared/synthetic_seed0
    python scripts/probes/probe_shortcuts.py --store data/prepared/synthetic_seed0 \
        --cnn-eval outputs/w14/eval-image

Two probes are fit on the train split and scored on the test split, each on the context view (the
whole picture) only:

* ``histogram`` — a logistic regression per category on the picture's global RGB histogram
  (8 x 8 x 8 bins, square-rooted, standardised): what a model learns from colours alone;
* ``thumbnail`` — the same on a 4 x 4 thumbnail (48 numbers): what it learns from the coarse layout.

Their test mAP (macro AP over the categories with a positive, as ``emotic-mm eval`` computes it) is
shown next to chance (the mean label frequency), next to the mean mAP of random scores (higher than
the label frequency where a category has few positives: AP's small-sample bias) and, with
``--cnn-eval <eval run dir>``, the image-only CNN's (its ``metrics.json``). The check: each probe's
gain over chance is at most a third of the CNN's gain — judged both from the label frequency (the
rule as first stated) and from the random scores (the same rule without the bias). If a probe gains
more, the picture cues are too coarse — a model can read the labels off global colour, and a few-pixel
attack has nothing to do.
The regularisation of each probe is chosen on val from a small grid (the probes get every chance).
Prints a table and writes JSON (``--out``).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

BINS = 8
THUMB = 4
GRID_C = (0.01, 0.1, 1.0)


def histogram_features(context: np.ndarray, chunk: int = 128) -> np.ndarray:
    """(N, 512): each picture's share of pixels in each of 8x8x8 RGB bins, square-rooted."""
    n = context.shape[0]
    out = np.zeros((n, BINS**3), np.float32)
    shift = 8 - int(np.log2(BINS))
    for start in range(0, n, chunk):
        block = np.asarray(context[start : start + chunk]) >> shift  # (b, H, W, 3) in 0..7
        b = block.shape[0]
        idx = (block[..., 0].astype(np.int64) * BINS + block[..., 1]) * BINS + block[..., 2]
        idx = idx.reshape(b, -1) + (np.arange(b) * BINS**3)[:, None]
        counts = np.bincount(idx.ravel(), minlength=b * BINS**3).reshape(b, BINS**3)
        out[start : start + b] = np.sqrt(counts / idx.shape[1])
    return out


def thumbnail_features(context: np.ndarray, chunk: int = 128) -> np.ndarray:
    """(N, 48): the picture averaged down to 4 x 4 RGB (area average)."""
    n, h, w, _ = context.shape
    out = np.zeros((n, THUMB * THUMB * 3), np.float32)
    for start in range(0, n, chunk):
        block = np.asarray(context[start : start + chunk], dtype=np.float32)
        b = block.shape[0]
        hh, ww = h - h % THUMB, w - w % THUMB
        small = block[:, :hh, :ww].reshape(b, THUMB, hh // THUMB, THUMB, ww // THUMB, 3).mean(axis=(2, 4))
        out[start : start + b] = small.reshape(b, -1) / 255.0
    return out


def per_category_ap(scores: np.ndarray, labels: np.ndarray) -> dict[str, float | None]:
    """AP per category as ``emotic-mm eval`` computes it (``training.metrics.per_category_ap``), None where
    the split has no positive: which labels a probe can read off colour."""
    import torch

    from emotic_mm.data.categories import CATEGORIES
    from emotic_mm.training.metrics import per_category_ap as eval_ap

    ap = eval_ap(torch.from_numpy(np.asarray(scores, dtype=np.float32)), torch.from_numpy(np.asarray(labels)))
    return {name: (None if np.isnan(v) else float(v)) for name, v in zip(CATEGORIES, ap)}


def mean_ap(scores: np.ndarray, labels: np.ndarray) -> float:
    """Macro AP over the categories with at least one positive (``emotic-mm eval``'s ``map``)."""
    aps = [v for v in per_category_ap(scores, labels).values() if v is not None]
    return float(np.mean(aps)) if aps else float("nan")


def chance_map(labels: np.ndarray) -> float:
    """A random scorer's expected AP is the positive rate: averaged like ``mean_ap``."""
    present = labels.any(axis=0)
    return float(labels[:, present].mean(axis=0).mean()) if present.any() else float("nan")


def random_map(labels: np.ndarray, draws: int = 20, seed: int = 0) -> tuple[float, float]:
    """Mean and std of the mAP of random scores on these labels. It sits above the mean label
    frequency when categories have few positives (AP's small-sample bias), so a gain measured from the
    label frequency alone flatters every scorer, a coin included."""
    rng = np.random.default_rng(seed)
    maps = [mean_ap(rng.random(labels.shape), labels) for _ in range(draws)]
    return float(np.mean(maps)), float(np.std(maps))


def logistic_scores(
    train_x: Any, train_y: np.ndarray, test_x: Any, c: float, max_iter: int = 500, tol: float = 1e-3
) -> np.ndarray:
    """One logistic regression per category (dense or sparse features); a category without both classes
    in train gets its train rate as a constant score."""
    from sklearn.linear_model import LogisticRegression

    scores = np.zeros((test_x.shape[0], train_y.shape[1]), np.float32)
    for k in range(train_y.shape[1]):
        y = train_y[:, k]
        if y.min() == y.max():
            scores[:, k] = float(y.mean())
            continue
        scores[:, k] = (
            LogisticRegression(C=c, max_iter=max_iter, tol=tol).fit(train_x, y).decision_function(test_x)
        )
    return scores


def fit_scores(train_x: np.ndarray, train_y: np.ndarray, test_x: np.ndarray, c: float) -> np.ndarray:
    """:func:`logistic_scores` on standardised features."""
    from sklearn.preprocessing import StandardScaler

    scaler = StandardScaler().fit(train_x)
    return logistic_scores(scaler.transform(train_x), train_y, scaler.transform(test_x), c)


def select_c(
    score: Callable[[str, float], np.ndarray], labels: dict[str, np.ndarray], grid: Sequence[float]
) -> tuple[float, dict[float, float]]:
    """The regularisation with the best val mAP (``score(split, C)`` gives a split's scores), and the val
    mAP of each; C = 1 without a val split with a positive. Ties go to the stronger regularisation."""
    if "val" not in labels or not labels["val"].any():
        return 1.0, {}
    val_maps = {c: mean_ap(score("val", c), labels["val"]) for c in grid}
    return max(val_maps, key=lambda c: (val_maps[c], -c)), val_maps


def probe(name: str, feats: dict[str, np.ndarray], labels: dict[str, np.ndarray]) -> dict[str, Any]:
    """Choose C on val (if the store has a val split), refit on train, score test."""
    started = time.time()

    def score(split: str, c: float) -> np.ndarray:
        return fit_scores(feats["train"], labels["train"], feats[split], c)

    best, val_maps = select_c(score, {k: v for k, v in labels.items() if k in feats}, GRID_C)
    scores = score("test", best)
    test_map = mean_ap(scores, labels["test"])
    return {
        "probe": name,
        "features": int(feats["train"].shape[1]),
        "C": best,
        "val_map_by_C": {str(k): v for k, v in val_maps.items()},
        "test_map": test_map,
        "test_ap": per_category_ap(scores, labels["test"]),
        "seconds": round(time.time() - started, 1),
    }


def read_eval(eval_dir: Path, flag: str = "--cnn-eval") -> dict[str, Any]:
    """An ``emotic-mm eval`` run's test mAP and modalities; anything else is one line naming ``flag``."""
    path = eval_dir / "metrics.json"
    if not path.is_file():
        raise SystemExit(
            f"{flag} {eval_dir}: no metrics.json there (run `emotic-mm eval ... split=test` first)"
        )
    metrics = json.loads(path.read_text())
    if metrics.get("split") not in (None, "test"):
        raise SystemExit(f"{flag} {eval_dir}: metrics are on split {metrics.get('split')!r}, not test")
    return {"map": float(metrics["map"]), "modalities": metrics.get("modalities"), "path": str(path)}


def run(
    store: Path, cnn_eval: Path | None = None, max_train: int | None = None, seed: int = 0
) -> dict[str, Any]:
    """The probes on ``store``; returns the report (see the module docstring)."""
    from emotic_mm.data.categories import CATEGORIES
    from emotic_mm.data.store import Store

    opened = Store(store)  # validates the arrays, names what is missing
    feats: dict[str, dict[str, np.ndarray]] = {"histogram": {}, "thumbnail": {}}
    labels: dict[str, np.ndarray] = {}
    counts = {}
    for split in ("train", "val", "test"):
        if split not in opened.splits:
            if split == "val":
                continue
            raise SystemExit(f"--store {store}: no {split} split (is it a prepared store?)")
        context = opened[split].context
        y = np.asarray(opened[split].categories, dtype=np.int64)
        rows = np.arange(len(y))
        if split == "train" and max_train is not None and len(rows) > max_train:
            rows = np.sort(np.random.default_rng(seed).choice(len(rows), max_train, replace=False))
            context, y = context[rows], y[rows]
        labels[split] = y
        counts[split] = int(len(y))
        feats["histogram"][split] = histogram_features(context)
        feats["thumbnail"][split] = thumbnail_features(context)
    chance = chance_map(labels["test"])
    coin, coin_std = random_map(labels["test"])
    cnn = read_eval(cnn_eval) if cnn_eval is not None else None
    probes = [probe(name, f, labels) for name, f in feats.items()]
    for p in probes:
        p["gain"] = p["test_map"] - chance
        p["gain_over_random"] = p["test_map"] - coin
        if cnn is not None:
            p["gain_vs_cnn"] = p["gain"] / (cnn["map"] - chance) if cnn["map"] > chance else float("inf")
            p["passes"] = bool(p["gain"] <= (cnn["map"] - chance) / 3)
            p["passes_over_random"] = bool(p["gain_over_random"] <= (cnn["map"] - coin) / 3)
    verdict = None if cnn is None else all(p["passes"] for p in probes)
    verdict_random = None if cnn is None else all(p["passes_over_random"] for p in probes)
    prevalence = {name: float(v) for name, v in zip(CATEGORIES, labels["test"].mean(axis=0))}
    return {
        "store": str(store),
        "persons": counts,
        "chance_map": chance,
        "random_map": coin,
        "random_map_std": coin_std,
        "test_prevalence": prevalence,
        "probes": probes,
        "cnn": None
        if cnn is None
        else {**cnn, "gain": cnn["map"] - chance, "gain_over_random": cnn["map"] - coin},
        "rule": (
            "each probe's gain over chance (the mean label frequency) <= 1/3 of the image-only CNN's gain"
        ),
        "passes": verdict,
        "passes_over_random": verdict_random,
    }


def print_report(report: dict[str, Any]) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"shortcut probes · {report['store']} · test persons {report['persons']['test']}")
    for col in ("scorer", "test mAP", "gain", "≤ ⅓ CNN", "gain (random)", "≤ ⅓ CNN "):
        table.add_column(col, justify="right" if col != "scorer" else "left")

    def ok(value: bool | None) -> str:
        return "" if value is None else ("[green]yes[/green]" if value else "[red]no[/red]")

    table.add_row("chance (label frequency)", f"{report['chance_map']:.4f}", "", "", "", "")
    table.add_row(
        "random scores",
        f"{report['random_map']:.4f}",
        f"{report['random_map'] - report['chance_map']:+.4f}",
        "",
        "",
        "",
    )
    for p in report["probes"]:
        table.add_row(
            f"{p['probe']} ({p['features']}, C={p['C']:g})",
            f"{p['test_map']:.4f}",
            f"{p['gain']:+.4f}",
            ok(p.get("passes")),
            f"{p['gain_over_random']:+.4f}",
            ok(p.get("passes_over_random")),
        )
    if report["cnn"] is not None:
        c = report["cnn"]
        table.add_row(
            f"CNN ({'+'.join(c['modalities'] or [])})",
            f"{c['map']:.4f}",
            f"{c['gain']:+.4f}",
            "",
            f"{c['gain_over_random']:+.4f}",
            "",
        )
    console = Console(width=max(Console().width, 110))  # a log file gets the whole table too
    console.print(table)
    console.print(
        f"gain = over the mean label frequency on test; gain (random) = over the mean mAP of random scores "
        f"(± {report['random_map_std']:.4f}), which AP's small-sample bias lifts above the frequency"
    )
    if report["passes"] is None:
        console.print("no --cnn-eval given: the rule (probe gain ≤ ⅓ of the CNN's) is not judged")
    else:
        for key, name in (
            ("passes", "gain over the label frequency"),
            ("passes_over_random", "gain over random scores"),
        ):
            console.print(
                f"each probe's {name} ≤ ⅓ of the CNN's → [{'green' if report[key] else 'red'}]"
                f"{'PASS' if report[key] else 'FAIL'}[/]"
            )


def main(argv: list[str] | None = None) -> dict[str, Any]:
    ap = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument(
        "--store", type=Path, required=True, help="a prepared store (e.g. data/prepared/synthetic_seed0)"
    )
    ap.add_argument(
        "--cnn-eval", type=Path, help="an `emotic-mm eval` run dir (split=test) of the image-only model"
    )
    ap.add_argument(
        "--out", type=Path, default=Path("bench_results/probe_shortcuts.json"), help="where the JSON goes"
    )
    ap.add_argument("--max-train", type=int, help="subsample the train split to this many persons (faster)")
    args = ap.parse_args(argv)
    sys.path.insert(
        0, str(Path(__file__).resolve().parents[1] / "benchmarks")
    )  # scripts/benchmarks/benchlib.py
    from benchlib import machine_info, write_report

    report = run(args.store, args.cnn_eval, args.max_train)
    print_report(report)
    write_report(args.out, "probe_shortcuts", machine_info(("scikit-learn",)), report)
    return report


if __name__ == "__main__":
    main()
