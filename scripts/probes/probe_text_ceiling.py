"""How much of the labels can the descriptions alone give? A ceiling for the text stream.

    python scripts/probes/probe_text_ceiling.py --store data/prepared/synthetic_seed0 --oracle-phrases \
        --eval outputs/quality/eval-text --eval outputs/quality/eval-baseline

The quality bar asks for a fused test mAP of at least 0.35. Whether the text could get there on its own,
or whether the pictures must add the rest, is a property of the store, not of a model. Two readers of the
descriptions are scored on the test split (macro AP over the categories with a positive, as
``emotic-mm eval`` computes it):

* ``tfidf`` — a bag of words (TF-IDF of 1–2-grams) with one logistic regression per category, its
  regularisation chosen on val: a strong, model-free reader of any store's descriptions;
* ``oracle phrases`` (``--oracle-phrases``, synthetic stores only) — a category scores 1 when one of the
  generator's own paraphrases of it (``emotic_mm.synthetic.TEXT_CUES``) is in the description, else 0: a
  reader of exactly the text cues. Its scores are binary, so AP ranks each block of ties as one; a
  reader that also orders persons within a block (the bag of words does) can score above it.

Each ``--eval`` (an ``emotic-mm eval ... split=test`` run dir) is shown beside them, so a text-only model
reads against its ceiling and a fused model's excess over the ceiling is what its pictures add.
Prints a table and writes JSON (``--out``).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from probe_shortcuts import (
    chance_map,
    logistic_scores,
    mean_ap,
    per_category_ap,
    random_map,  # noqa: E402
    read_eval,
    select_c,
)

GRID_C = (0.3, 1.0, 4.0, 16.0)


def tfidf_scores(train: list[str], train_y: np.ndarray, test: list[str], c: float) -> np.ndarray:
    """:func:`logistic_scores` on TF-IDF 1–2-grams (the vocabulary from train)."""
    from sklearn.feature_extraction.text import TfidfVectorizer

    vectoriser = TfidfVectorizer(ngram_range=(1, 2), min_df=2, sublinear_tf=True)
    return logistic_scores(
        vectoriser.fit_transform(train), train_y, vectoriser.transform(test), c, max_iter=2000, tol=1e-4
    )


def oracle_phrase_scores(descriptions: list[str]) -> np.ndarray:
    """1 where a description holds one of the synthetic generator's paraphrases of the category."""
    from emotic_mm.data.categories import CATEGORIES
    from emotic_mm.synthetic import TEXT_CUES

    scores = np.zeros((len(descriptions), len(CATEGORIES)), np.float32)
    for k, name in enumerate(CATEGORIES):
        phrases = TEXT_CUES.get(name, ())
        scores[:, k] = [any(p in d for p in phrases) for d in descriptions]
    return scores


def run(store: Path, evals: list[Path], oracle: bool = False) -> dict[str, Any]:
    from emotic_mm.data.store import Store

    opened = Store(store)  # validates the arrays, names what is missing
    texts: dict[str, list[str]] = {}
    labels: dict[str, np.ndarray] = {}
    for split in ("train", "val", "test"):
        if split not in opened.splits:
            if split == "val":
                continue
            raise SystemExit(f"--store {store}: no {split} split (is it a prepared store?)")
        descriptions = opened[split].descriptions
        if descriptions is None:
            raise SystemExit(
                f"--store {store}: the {split} split has no descriptions "
                "(no 'Description' column in its .csv)"
            )
        texts[split], labels[split] = list(descriptions), np.asarray(opened[split].categories, np.int64)
    readers = []
    started = time.time()

    def score(split: str, c: float) -> np.ndarray:
        return tfidf_scores(texts["train"], labels["train"], texts[split], c)

    best, val_maps = select_c(score, labels, GRID_C)
    scores = score("test", best)
    readers.append(
        {
            "reader": f"tfidf (C={best:g}, chosen on val)",
            "test_map": mean_ap(scores, labels["test"]),
            "test_ap": per_category_ap(scores, labels["test"]),
            "C": best,
            "val_map_by_C": {str(k): v for k, v in val_maps.items()},
            "seconds": round(time.time() - started, 1),
        }
    )
    if oracle:
        scores = oracle_phrase_scores(texts["test"])
        readers.append(
            {
                "reader": "oracle phrases (the generator's paraphrases)",
                "test_map": mean_ap(scores, labels["test"]),
                "test_ap": per_category_ap(scores, labels["test"]),
            }
        )
    coin, coin_std = random_map(labels["test"])
    return {
        "store": str(store),
        "persons": {s: len(t) for s, t in texts.items()},
        "chance_map": chance_map(labels["test"]),
        "random_map": coin,
        "random_map_std": coin_std,
        "readers": readers,
        "evals": [read_eval(e, "--eval") for e in evals],
    }


def print_report(report: dict[str, Any]) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"text ceiling · {report['store']} · test persons {report['persons']['test']}")
    table.add_column("scorer")
    table.add_column("test mAP", justify="right")
    table.add_row("chance (label frequency)", f"{report['chance_map']:.4f}")
    table.add_row(f"random scores (± {report['random_map_std']:.4f})", f"{report['random_map']:.4f}")
    for r in report["readers"]:
        table.add_row(r["reader"], f"{r['test_map']:.4f}")
    for e in report["evals"]:
        table.add_row(f"model ({'+'.join(e['modalities'] or [])}) · {e['path']}", f"{e['map']:.4f}")
    Console(width=max(Console().width, 110)).print(table)


def main(argv: list[str] | None = None) -> dict[str, Any]:
    ap = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument(
        "--store", type=Path, required=True, help="a prepared store (e.g. data/prepared/synthetic_seed0)"
    )
    ap.add_argument(
        "--oracle-phrases", action="store_true", help="also score the synthetic generator's paraphrases"
    )
    ap.add_argument(
        "--eval", type=Path, action="append", default=[], help="an `emotic-mm eval` run dir (split=test)"
    )
    ap.add_argument(
        "--out", type=Path, default=Path("bench_results/probe_text_ceiling.json"), help="where the JSON goes"
    )
    args = ap.parse_args(argv)
    sys.path.insert(
        0, str(Path(__file__).resolve().parents[1] / "benchmarks")
    )  # scripts/benchmarks/benchlib.py
    from benchlib import machine_info, write_report

    report = run(args.store, args.eval, args.oracle_phrases)
    print_report(report)
    write_report(args.out, "probe_text_ceiling", machine_info(("scikit-learn",)), report)
    return report


if __name__ == "__main__":
    main()
