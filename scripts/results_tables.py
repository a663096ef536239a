"""Write the results tables of README.md and docs/ from the JSON records under docs/results/data/.

    python scripts/results_tables.py            # rewrite every table between its markers
    python scripts/results_tables.py --check    # exit 1 and name the files whose tables are stale
    python scripts/results_tables.py --record outputs/demo/eval-joint --name demo-eval-joint

A table sits between ``<!-- results:NAME -->`` and ``<!-- /results:NAME -->`` in a markdown file; NAME
is a key of ``TABLES``. Each record (``docs/results/data/<name>.json``) names its ``command``,
``commit``, ``machine`` and ``date``, and holds either a run's own JSON (``result``, with its
``run.json`` as ``run``: written by ``--record``) or a measurement transcribed as ``columns`` and
``rows`` (``"source": "transcribed from the measurement record"``). Nobody edits a table by hand:
change or add a record, then run ``make docs``.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import re
import sys
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT / "docs" / "results" / "data"
REQUIRED = ("command", "commit", "machine", "date", "source")
MARKER = re.compile(r"(<!-- results:(?P<name>[\w.-]+) -->\n)(?P<body>.*?)(<!-- /results:(?P=name) -->)", re.S)


def load(name: str) -> dict:
    """One record by name; every record must say how, where and when it was measured."""
    path = DATA / f"{name}.json"
    if not path.is_file():
        raise SystemExit(f"{path}: no such results record")
    record = json.loads(path.read_text())
    missing = [k for k in REQUIRED if not record.get(k)]
    if missing:
        raise SystemExit(f"{path}: missing {', '.join(missing)}")
    return record


def wilson(successes: int, n: int, z: float = 1.959963984540054) -> tuple[float, float]:
    """Wilson 95 % interval of a proportion (the report's interval)."""
    if n == 0:
        return 0.0, 1.0
    p = successes / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return max(0.0, centre - half), min(1.0, centre + half)


def rate(successes: int, n: int) -> str:
    lo, hi = wilson(successes, n)
    return f"{successes}/{n} [{100 * lo:.1f}, {100 * hi:.1f} %]".replace("[0.0,", "[0,")


def markdown(columns: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def source_line(names: list[str], target: Path) -> str:
    """The records a table was written from, linked relative to the file that shows it."""
    parts = []
    for name in names:
        rec = load(name)
        link = os.path.relpath(DATA / f"{name}.json", target.parent).replace(os.sep, "/")
        parts.append(f"[{name}]({link}) ({rec['date']}, {rec['commit'].split()[0]}, {rec['machine']})")
    return "<sub>Data: " + "; ".join(parts) + ".</sub>"


def transcribed(name: str) -> Callable[[Path], str]:
    """A measurement kept as columns and rows: the table as it was recorded."""

    def render(target: Path) -> str:
        rec = load(name)
        return markdown(rec["columns"], rec["rows"]) + "\n\n" + source_line([name], target)

    return render


# What `scripts/compare.py` prints at the end of `make demo` (its columns and number formats).
COMPARE = [
    ("test mAP", "map"),
    ("mAP (VOC)", "map_voc"),
    ("dominant acc", "dominant_acc"),
    ("top-1 hit", "top1_hit"),
    ("F1", "f1"),
    ("VAD MAE", "vad_mae"),
]


def compare_cells(m: dict) -> list[str]:
    return [
        m["variant"],
        "+".join(m["modalities"]),
        *(f"{m[k]:.3f}" if k == "vad_mae" else f"{m[k]:.4f}" for _, k in COMPARE),
    ]


def demo(target: Path) -> str:
    names = ["demo-eval-baseline", "demo-eval-joint"]
    rows = [compare_cells(load(n)["result"]) for n in names]
    return (
        markdown(["model", "modalities", *(c for c, _ in COMPARE)], rows)
        + "\n\n"
        + source_line(names, target)
    )


def demo_full(target: Path) -> str:
    names = ["backbone-demo-eval-baseline", "backbone-demo-eval-joint"]
    rows = []
    for n in names:
        m = load(n)["result"]
        rows.append([*compare_cells(m), str(m["top1_distinct"]), f"{m['top1_majority_share']:.3f}"])
    cols = ["model", "modalities", *(c for c, _ in COMPARE), "distinct top-1", "majority share"]
    return markdown(cols, rows) + "\n\n" + source_line(names, target)


def headline(target: Path) -> str:
    """Chance, the image-only, text-only and fused models on the default world, and the few-pixel slice."""
    study = load("study-quick-report")["result"]
    largest = max(int(c["k"]) for c in study["pixel"]["curve"])
    fooled = {
        (c["model"], c["modalities"]): f"{rate(c['success_k'], c['success_n'])} (rs, k = {largest}, "
        f"{c['budget']} queries)"
        for c in study["pixel"]["curve"]
        if c["algorithm"] == "rs" and int(c["k"]) == largest
    }
    image = load("world-image-only-eval")["result"]
    chance = sum(image["per_category_prevalence"].values()) / len(image["per_category_prevalence"])
    rows = [["chance (mean label frequency)", "—", "—", f"{chance:.4f}", "—", "—", "—"]]
    for name in ("world-image-only-eval", "world-text-only-eval", "demo-eval-baseline", "demo-eval-joint"):
        m = load(name)["result"]
        attacked = fooled.get((m["variant"], "+".join(m["modalities"])), "—")
        encoder = "EfficientNet-Lite0, frozen" if {"context", "body"} & set(m["modalities"]) else "—"
        rows.append(
            [
                f"`model={m['variant']}`",
                encoder,
                "+".join(m["modalities"]),
                f"{m['map']:.4f}",
                f"{m['dominant_acc']:.3f}",
                str(m["top1_distinct"]),
                attacked,
            ]
        )
    cols = [
        "model",
        "image encoder",
        "modalities",
        "test mAP",
        "dominant acc",
        "distinct top-1 answers",
        "fooled by a few-pixel attack",
    ]
    names = [
        "world-image-only-eval",
        "world-text-only-eval",
        "demo-eval-baseline",
        "demo-eval-joint",
        "study-quick-report",
    ]
    return markdown(cols, rows) + "\n\n" + source_line(names, target)


def attack_curve(name: str) -> Callable[[Path], str]:
    """An attack run's success curve over k with Wilson intervals, on all and on clean-correct persons."""
    return lambda target: _attack_curve(name, target)


def _attack_curve(name: str, target: Path) -> str:
    s = load(name)["result"]
    rows = [
        [
            str(c["pixels"]),
            rate(c["successes"], s["persons"]),
            rate(c["successes_correct"], s["persons_correct"]),
            f"{c['robust_dominant_accuracy']:.3f}",
        ]
        for c in s["curve"]
    ]
    q = s["clean_margin_quartiles"]
    note = (
        f"{s['persons']} test persons ({s['persons_correct']} clean-correct), budget {s['budget']} queries "
        f"per person and k, population {s['population']}, seed {s['seed']}; clean test mAP "
        f"{s['clean_map']:.4f}; clean top-1 margin quartiles {q[0]:.3f} / {q[1]:.3f} / {q[2]:.3f} (logits); "
        f"{s['total_queries']:,} queries in {s['wall_seconds']:,.0f} s ({s['queries_per_s']:.0f} queries/s)."
    )
    table = markdown(
        ["k", "success, all persons", "success, clean-correct persons", "robust dominant acc"], rows
    )
    return table + "\n\n" + note + "\n\n" + source_line([name], target)


def _pct(value: float) -> str:
    return f"{100 * value:.1f}"


def study_curve(name: str) -> Callable[[Path], str]:
    """A study report's arms: clean model, then success at each k (all persons; clean-correct at the
    largest k) with Wilson intervals, as ``emotic-mm report`` computed them."""

    def render(target: Path) -> str:
        report = load(name)["result"]
        curve = report["pixel"]["curve"]
        ks = sorted({int(c["k"]) for c in curve})
        arms = {c["setting"] + "|" + c["arm"]: c for c in report["pixel"]["arms"]}
        rows = []
        for key, arm in arms.items():
            points = {int(c["k"]): c for c in curve if c["setting"] + "|" + c["arm"] == key}
            last = points[ks[-1]]
            rows.append(
                [
                    f"{arm['algorithm']} · {arm['model']} · {arm['modalities']}"
                    + (f" · {arm['defense']}" if arm.get("defense") not in (None, "none", "n/a") else ""),
                    f"{100 * arm['clean_map_mean']:.1f}",
                    f"{arm['clean_k']}/{arm['clean_n']}",
                    *(
                        f"{points[k]['success_k']}/{points[k]['success_n']} "
                        f"[{_pct(points[k]['success_low'])}, {_pct(points[k]['success_high'])} %]"
                        for k in ks
                    ),
                    f"{last['success_correct_k']}/{last['success_correct_n']} "
                    f"[{_pct(last['success_correct_low'])}, {_pct(last['success_correct_high'])} %]",
                ]
            )
        cols = [
            "attack · model · modalities",
            "clean mAP (%)",
            "clean-correct",
            *(f"fooled, k = {k}" for k in ks),
            f"fooled clean-correct, k = {ks[-1]}",
        ]
        return markdown(cols, rows) + "\n\n" + source_line([name], target)

    return render


def clean_margins(names: list[str]) -> Callable[[Path], str]:
    """Each attacked model's clean top-1 margin (top-1 minus second logit) over the attacked persons, beside
    its success at the largest k: a model whose answers are near ties flips easily, one that gives
    everyone the same answer by a wide margin cannot be flipped, and neither says much about robustness."""

    def table(target: Path) -> str:
        rows = []
        for name in names:
            s = load(name)["result"]
            last = s["curve"][-1]
            q = s["clean_margin_quartiles"]
            rows.append(
                [
                    f"{s['algorithm']} · {s['model']} · {'+'.join(s['modalities'])}",
                    str(s["persons"]),
                    " / ".join(f"{v:.2f}" for v in q),
                    rate(int(last["successes"]), int(s["persons"])),
                ]
            )
        columns = [
            "attack · model · modalities",
            "persons",
            "clean top-1 margin, quartiles 25 / 50 / 75 % (logits)",
            f"fooled, k = {s['curve'][-1]['pixels']}",
        ]
        return markdown(columns, rows) + "\n\n" + source_line(names, target)

    return table


def study_verdicts(name: str) -> Callable[[Path], str]:
    """A study report's paired comparisons at the largest k, with intervals, McNemar p and the verdict."""

    def render(target: Path) -> str:
        report = load(name)["result"]
        rows = []
        for v in report["verdicts"]:
            p = v["pvalue"]
            rows.append(
                [
                    v["comparison"],
                    v["held"],
                    v["n"].replace(" pairs", ""),
                    f"{100 * v['diff']:+.1f} [{100 * v['low']:+.1f}, {100 * v['high']:+.1f}]",
                    "<0.001" if p < 0.001 else f"{p:.3f}",
                    v["verdict"],
                ]
            )
        cols = [
            "A vs B",
            "held equal",
            "pairs",
            "A − B, points [paired bootstrap 95 %]",
            "McNemar p",
            "verdict",
        ]
        return markdown(cols, rows) + "\n\n" + source_line([name], target)

    return render


def inference(target: Path) -> str:
    """``scripts/benchmarks/bench_inference.py``: images/s of the fixed backbone by layout, folding and
    chunk size."""
    bench = load("bench-inference")["result"]
    rows = [
        [
            str(r["size"]),
            str(r["chunk"]),
            r["layout"],
            "yes" if r["folded"] else "no",
            f"{r['images_per_s']:.1f}",
            f"{r['ratio']:.2f}",
        ]
        for r in bench["rows"]
        if r["chunk"] in (8, 16, 256)
    ]
    cols = ["px", "rows per pass", "layout", "BatchNorm folded", "images/s", "× NCHW, unfolded, 256 rows"]
    return markdown(cols, rows) + "\n\n" + source_line(["bench-inference"], target)


def cue_family(category: str) -> str:
    """Where the synthetic default shows a category in the picture (face, posture, place and/or object)."""
    from emotic_mm.synthetic import BODY_CUES, FACE_CUES, SCENE_CUES
    from emotic_mm.synthetic.places import PLACE_CUES

    shown = []
    if category in BODY_CUES:
        shown.append(
            f"face ({BODY_CUES[category]})"
            if BODY_CUES[category] in FACE_CUES
            else f"posture ({BODY_CUES[category].replace('_', ' ')})"
        )
    if category in PLACE_CUES:
        shown.append(f"place ({PLACE_CUES[category]})")
    if category in SCENE_CUES:
        shown.append(f"object ({SCENE_CUES[category]})")
    return ", ".join(shown) or "— (text only)"


def per_category(target: Path) -> str:
    """Per-category test AP of the image-only model next to prevalence and the calibration bar."""
    name = "world-image-only-eval"
    m = load(name)["result"]
    rows = []
    for category, ap in m["per_category_ap"].items():
        p = m["per_category_prevalence"][category]
        bar = min(2 * p, p + 0.25)
        rows.append(
            [
                category,
                cue_family(category),
                f"{p:.3f}",
                "—" if ap is None else f"{ap:.3f}",
                f"{bar:.3f}",
                "yes" if ap is not None and ap >= bar else "no",
            ]
        )
    cols = [
        "category",
        "shown in the picture as",
        "prevalence (test)",
        "test AP",
        "min(2p, p + 0.25)",
        "reached",
    ]
    return markdown(cols, rows) + "\n\n" + source_line([name], target)


def world_quality(target: Path) -> str:
    """The four models on the calibrated default: image-only, text-only, baseline and joint."""
    names = ["world-image-only-eval", "world-text-only-eval", "demo-eval-baseline", "demo-eval-joint"]
    rows = []
    for n in names:
        m = load(n)["result"]
        r10 = m.get("retrieval", {}).get("i2t_r@10")
        rows.append(
            [
                f"`model={m['variant']}`",
                "+".join(m["modalities"]),
                f"{m['map']:.4f}",
                f"{m['dominant_acc']:.3f}",
                str(m["top1_distinct"]),
                f"{m['top1_majority_share']:.3f}",
                f"{m['top1_margin_median']:.3f}",
                "—" if r10 is None else f"{r10:.3f} (chance {10 / m['persons']:.3f})",
            ]
        )
    cols = [
        "model",
        "modalities",
        "test mAP",
        "dominant acc",
        "distinct top-1",
        "majority share",
        "median top-1 margin",
        "image→text R@10",
    ]
    return markdown(cols, rows) + "\n\n" + source_line(names, target)


def world_probes(target: Path) -> str:
    """The shortcut probes on the calibrated default beside the image-only model."""
    name = "world-shortcut-probes"
    r = load(name)["result"]
    cnn = r["cnn"]
    rows = [
        ["chance: mean label frequency", f"{r['chance_map']:.4f}", "—", "—"],
        [
            "chance: random scores (mean of 20 draws)",
            f"{r['random_map']:.4f} ± {r['random_map_std']:.4f}",
            "—",
            "—",
        ],
    ]
    labels = {
        "histogram": "logistic regression on the context view's RGB histogram (8×8×8)",
        "thumbnail": "logistic regression on a 4 × 4 thumbnail",
    }
    for p in r["probes"]:
        rows.append(
            [
                labels.get(p["probe"], p["probe"]),
                f"{p['test_map']:.4f}",
                f"{p['gain_vs_cnn']:.2f}",
                "yes" if p["passes"] else "no",
            ]
        )
    rows.append(["image-only model (" + "+".join(cnn["modalities"]) + ")", f"{cnn['map']:.4f}", "1.00", "—"])
    cols = ["scorer", "test mAP", "gain over chance / the model's", "≤ ⅓"]
    return markdown(cols, rows) + "\n\n" + source_line([name], target)


BACKDOOR_SLICE = [
    f"backdoor-{model}-{point}"
    for model in ("baseline", "joint")
    for point in ("5pct-16px", "5pct-36px", "10pct-16px", "10pct-36px")
]


def backdoor_slice(names: list[str]) -> Callable[[Path], str]:
    """Backdoor runs (``case=backdoor`` summaries): ASR with its Wilson interval beside the clean-model
    control and the poisoned model's clean test mAP, one row per run."""

    def table(target: Path) -> str:
        rows = []
        for name in names:
            s = load(name)["result"]
            n = int(s["triggered_persons"])
            rows.append(
                [
                    s["model"],
                    s["variant"],
                    f"{100 * s['rate']:g} % ({s['poisoned_persons']} persons)",
                    f"{s['pixels']} ({s['surface']})",
                    rate(round(s["asr"] * n), n),
                    rate(round(s["asr_clean_model"] * n), n),
                    f"{s['clean']['map']:.4f} → {s['poisoned']['map']:.4f}",
                ]
            )
        columns = [
            "model",
            "labels",
            "poisoned share",
            "trigger pixels (view)",
            "ASR, poisoned model",
            "ASR, clean model (control)",
            "test mAP clean → poisoned",
        ]
        return markdown(columns, rows) + "\n\n" + source_line(names, target)

    return table


def backdoor_headline(names: list[str]) -> Callable[[Path], str]:
    """One sentence for the README: the strongest backdoor of the slice, with its n and interval ("barely
    takes" while the upper end of its interval stays under 10 %)."""

    def line(target: Path) -> str:
        runs = [load(name)["result"] for name in names]
        best = max(runs, key=lambda s: s["asr"])
        n = int(best["triggered_persons"])
        hits, control = round(best["asr"] * n), round(best["asr_clean_model"] * n)
        verb = "barely takes" if wilson(hits, n)[1] < 0.10 else "takes"
        return (
            f"A few-pixel backdoor {verb} on the frozen-backbone default: at most {rate(hits, n)} of the "
            f"triggered test persons become {best['target']} ({best['model']}, {100 * best['rate']:g} % of "
            f"the training persons poisoned, {best['pixels']}-pixel trigger; clean model {control}/{n}), "
            f"over {len(runs)} poisoned trainings.\n\n" + source_line(names, target)
        )

    return line


PEER_BENCH = [f"bench-peers-image-k{k}" for k in (1, 10, 100)]


def peer_bench(names: list[str]) -> Callable[[Path], str]:
    """``bench_attack.py`` runs (one per model and k): each attacker's success within k pixels with its
    Wilson interval, median queries to success, wall time per person, beside the run's setting."""

    def table(target: Path) -> str:
        rows = []
        for name in names:
            bench = load(name)["result"]
            st, ck = bench["settings"], bench["checkpoint"]
            for r in bench["rows"].values():
                beyond = f" (+{r['flipped_beyond_k']} beyond k)" if r.get("flipped_beyond_k") else ""
                median = r["median_queries_success"]
                rows.append(
                    [
                        "+".join(ck["modalities"]),
                        str(st["pixels"]),
                        r["label"],
                        f"{r['population']} × {r['generations'] + 1}",
                        rate(r["successes"], r["persons"]) + beyond,
                        "—" if median is None else f"{median:.0f}",
                        f"{r['wall_per_person']:.1f}",
                        f"{r['queries_per_s']:.0f}",
                    ]
                )
        columns = [
            "model",
            "k",
            "attacker",
            "population × generations",
            "success within k pixels",
            "median queries (successes)",
            "wall s / person",
            "queries/s",
        ]
        return markdown(columns, rows) + "\n\n" + source_line(names, target)

    return table


def peer_targets(names: list[str]) -> Callable[[Path], str]:
    """The issue's targets as each ``bench_attack.py`` run checked them."""

    def table(target: Path) -> str:
        rows = []
        for name in names:
            bench = load(name)["result"]
            model = "+".join(bench["checkpoint"]["modalities"])
            for t in bench["targets"]:
                if t["target"].startswith("efficiency"):
                    continue
                value = "—" if t["value"] is None else f"{t['value']:.2f}"
                verdict = "—" if t["passed"] is None else ("met" if t["passed"] else "not met")
                rows.append(
                    [
                        model,
                        str(bench["settings"]["pixels"]),
                        t["target"],
                        value,
                        f"{t['threshold']:g}",
                        verdict,
                        t["note"],
                    ]
                )
        columns = ["model", "k", "target", "value", "bar", "verdict", "how"]
        return markdown(columns, rows) + "\n\n" + source_line(names, target)

    return table


def schedule(name: str) -> Callable[[Path], str]:
    """``bench_schedule.py``: the one-pass curve against one run per k, per k with Wilson intervals and the
    exact paired test, and the speed-up."""

    def table(target: Path) -> str:
        bench = load(name)["result"]
        rows = [
            [
                str(r["pixels"]),
                rate(r["one_pass_successes"], bench["persons"]),
                rate(r["separate_successes"], bench["persons"]),
                f"{r['only_one_pass']} / {r['only_separate']}",
                f"{r['mcnemar_p']:.3f}",
            ]
            for r in bench["rows"]
        ]
        note = (
            f"{bench['persons']} persons; one pass {bench['one_pass_seconds']:.0f} s and "
            f"{bench['one_pass_queries']:,} queries, separate runs {bench['separate_seconds']:.0f} s and "
            f"{bench['separate_queries']:,} queries: a speed-up of {bench['speedup']:.2f}×."
        )
        columns = ["k", "one pass", "a run per k", "fooled only by one pass / only by separate", "McNemar p"]
        return markdown(columns, rows) + "\n\n" + note + "\n\n" + source_line([name], target)

    return table


def defense_headline(name: str) -> Callable[[Path], str]:
    """One sentence for the README: each input defense's success at the largest k beside no defense, with
    the verdict of its paired comparison with no defense."""

    def line(target: Path) -> str:
        report = load(name)["result"]
        curve = report["pixel"]["curve"]
        k = max(int(c["k"]) for c in curve)
        at_k = {c["defense"]: c for c in curve if int(c["k"]) == k}
        verdicts = {v["comparison"]: v["verdict"] for v in report["verdicts"]}
        parts = []
        for defense, c in at_k.items():
            if defense == "none":
                continue
            parts.append(
                f"with `defense={defense}` {rate(c['success_k'], c['success_n'])} "
                f"({verdicts.get(f'{defense} vs none', 'not compared')})"
            )
        none = at_k["none"]
        return (
            f"Input defenses inside the encoders of the image-only baseline, against the same search, which "
            f"queries them (k = {k}): without a defense "
            f"{rate(none['success_k'], none['success_n'])} are fooled, "
            + "; ".join(parts)
            + ".\n\n"
            + source_line([name], target)
        )

    return line


# (label, eval certify=true record, attack record with attack.certificates or None): ablation models
CERTIFIED = [
    ("image-only baseline (context+body)", "ablation-image-certify", None),
    ("fused baseline (context+body+text)", "ablation-fused-certify", "ablation-fused-soundness"),
]
CERTIFIED_RADII = ("0", "1", "2", "5", "10")


def certification(target: Path) -> str:
    """Certified accuracy of randomized-ablation models at each radius (the vote's top-1 among the person's
    categories, as the certificate counts it), with Wilson intervals over the certified persons, beside
    the vote's answers and the certificate's soundness under attack."""
    rows, names = [], []
    for label, cert_name, attack_name in CERTIFIED:
        m = load(cert_name)["result"]
        c, n = m["certified"], int(m["certified"]["persons"])
        names.append(cert_name)
        sound = "not attacked"
        if attack_name is not None:
            names.append(attack_name)
            attack = load(attack_name)["result"]
            s, ks = attack["soundness"], ", ".join(map(str, attack["pixels"]))
            sound = (
                f"{s['violations']} violations in {s['checked_person_k']} (person, k ≤ r) checks "
                f"({s['persons']} persons attacked, k = {ks})"
            )
        rows.append(
            [
                label,
                f"{c['keep']} of {c['pixels']}",
                f"{m['map']:.4f}",
                rate(round(c["clean_vote_accuracy"] * n), n),
                " / ".join(str(round(c["certified_accuracy"][r] * n)) for r in CERTIFIED_RADII) + f" of {n}",
                rate(round(c["certified_accuracy"][CERTIFIED_RADII[-1]] * n), n),
                "—" if c["median_certified_radius"] < 0 else f"{c['median_certified_radius']:g}",
                c["one_answer"] or "no",
                sound,
            ]
        )
    columns = [
        "ablation model",
        "kept pixels",
        "test mAP (879)",
        "vote's top-1 hit",
        f"certified top-1 hits at r = {' / '.join(CERTIFIED_RADII)}",
        f"at r = {CERTIFIED_RADII[-1]}",
        "median radius",
        "one answer",
        "soundness (must be 0)",
    ]
    return markdown(columns, rows) + "\n\n" + source_line(names, target)


DETECTORS = ["detect-spectral", "detect-activation-clustering", "detect-strip"]
DETECTOR_NAMES = {"spectral": "spectral signatures", "activation_clustering": "activation clustering"}


def detectors(names: list[str]) -> Callable[[Path], str]:
    """Backdoor runs with a poison filter (spectral signatures, activation clustering: the poisons it finds
    and the ASR after retraining without what it flags) or a test-time detector (STRIP: false acceptance
    of triggered persons at the false rejection it was set to on held-out persons)."""

    def table(target: Path) -> str:
        rows = []
        for name in names:
            s = load(name)["result"]
            n = int(s["triggered_persons"])
            before = rate(round(s["asr"] * n), n)
            if "detection" in s:
                d, after = s["detection"], s["after_defense"]
                found = round(d["tpr"] * d["poisoned"])
                clean_flagged = round(d["fpr"] * (d["rows"] - d["poisoned"]))
                rows.append(
                    [
                        s["defense"],
                        f"{found}/{d['poisoned']} poisoned rows flagged (TPR {d['tpr']:.2f}); "
                        f"{clean_flagged}/{d['rows'] - d['poisoned']} clean rows (FPR {d['fpr']:.3f})",
                        f"{before} → {rate(round(after['asr'] * n), n)}",
                        f"{s['poisoned']['map']:.4f} → {after['map']:.4f}",
                    ]
                )
            else:
                st = s["strip"]
                t, c = int(st["triggered_persons"]), int(st["clean_persons"])
                rows.append(
                    [
                        s["defense"],
                        f"threshold at {100 * st['frr_target']:g} % false rejection on "
                        f"{st['calibration_persons']} val persons; clean test persons rejected "
                        f"{rate(round(st['false_rejection'] * c), c)}; triggered persons let through "
                        f"{rate(round(st['false_acceptance'] * t), t)}",
                        f"{before} (no retraining)",
                        f"{s['poisoned']['map']:.4f}",
                    ]
                )
        columns = ["defense", "what it found", "ASR poisoned → defended", "test mAP poisoned → defended"]
        return markdown(columns, rows) + "\n\n" + source_line(names, target)

    return table


def certified_and_detected(target: Path) -> str:
    """One sentence for the README: what randomized ablation certifies on the fused default, its soundness,
    and what each poison detector found against the slice's strongest backdoor."""
    label, cert_name, attack_name = CERTIFIED[1]
    c = load(cert_name)["result"]["certified"]
    n, r = int(c["persons"]), CERTIFIED_RADII[-1]
    sound = load(attack_name)["result"]["soundness"]
    found = []
    for name in DETECTORS:
        s = load(name)["result"]
        if "detection" in s:
            d = s["detection"]
            found.append(
                f"{DETECTOR_NAMES[s['defense']]} flagged {round(d['tpr'] * d['poisoned'])}/{d['poisoned']} "
                "poisoned training rows"
            )
        else:
            st = s["strip"]
            t = int(st["triggered_persons"])
            found.append(f"STRIP let {round(st['false_acceptance'] * t)}/{t} triggered persons through")
    model = label.split(" (")[0]
    other_label, other_name, _ = CERTIFIED[0]
    one_answer = load(other_name)["result"]["certified"]["one_answer"]
    other = (
        f"; the {other_label.split(' (')[0]}'s vote answers {one_answer}, so its certificates say nothing"
        if one_answer
        else ""
    )
    return (
        f"Randomized ablation (keep {c['keep']} of {c['pixels']} pixels) certifies the {model}'s vote to "
        f"r = {r} changed pixels for {rate(round(c['certified_accuracy'][r] * n), n)} of the test persons "
        f"it certified, with {sound['violations']} soundness violations in {sound['checked_person_k']} "
        f"attacked checks{other}. Against the strongest backdoor, "
        + "; ".join(found)
        + ".\n\n"
        + source_line([cert_name, other_name, attack_name, *DETECTORS], target)
    )


def backbone_bench(name: str) -> Callable[[Path], str]:
    """``bench_backbone.py``: the default encoder against the from-scratch ResNet-18 on the image-only
    baseline, medians over alternating rounds of one run, and their ratios."""

    def table(target: Path) -> str:
        result = load(name)["result"]
        settings, medians = result["settings"], result["medians"]
        ratios = result["ratios_lite0_over_resnet18"]
        rows = [
            [
                encoder,
                f"{m['setup_s']:.0f}",
                f"{m['train_images_per_s']:.1f}",
                f"{m['epochs_images_per_s']:.1f}",
                f"{m['attack_queries_per_s']:.1f}",
            ]
            for encoder, m in medians.items()
        ]
        rows.append(
            [
                "ratio (Lite0 ÷ ResNet-18)",
                "",
                f"{ratios['train_images_per_s']:.2f}",
                f"{ratios['epochs_images_per_s']:.2f}",
                f"{ratios['attack_queries_per_s']:.2f}",
            ]
        )
        columns = [
            "`model/image_encoder=`",
            "feature warm-up (s)",
            "training step (images/s)",
            f"{settings['epochs']}-epoch training, warm-up included (images/s)",
            f"attack queries/s (rs, k = {settings['pixels']})",
        ]
        note = f"Medians of {settings['repeats']} alternating rounds in one run."
        return markdown(columns, rows) + "\n\n" + note + "\n\n" + source_line([name], target)

    return table


# (label, train record, eval record): the image-only baseline under each training mode of the backbone
TRAINING_MODES = [
    ("frozen, features memoised (default)", "world-image-only-train", "world-image-only-eval"),
    ("last 2 blocks + head conv trainable, trunk memoised", "partial-ft-train", "partial-ft-eval"),
    ("frozen, 3 epochs (control for full fine-tuning)", "frozen-3ep-train", "frozen-3ep-eval"),
    ("whole backbone trainable at lr × 0.1, 3 epochs", "full-ft-train", "full-ft-eval"),
]


def training_modes(target: Path) -> str:
    """The image-only baseline's test figures and training time under each backbone training mode."""
    rows, names = [], []
    for label, train_name, eval_name in TRAINING_MODES:
        t, m = load(train_name)["result"], load(eval_name)["result"]
        names += [train_name, eval_name]
        rows.append(
            [
                label,
                f"{m['map']:.4f}",
                f"{m['dominant_acc']:.3f}",
                str(m["top1_distinct"]),
                f"{m['top1_majority_share']:.3f}",
                f"{t['train_seconds'] / 60:.1f} min ({t['epochs_run']} epochs)",
            ]
        )
    columns = [
        "backbone",
        "test mAP",
        "dominant acc",
        "distinct top-1",
        "majority answer's share",
        "training (after the warm-up)",
    ]
    return markdown(columns, rows) + "\n\n" + source_line(names, target)


def training_modes_headline(target: Path) -> str:
    """One sentence for the README: why the default backbone is frozen, each mode's test mAP and cost."""
    names = [name for _, train_name, eval_name in TRAINING_MODES for name in (train_name, eval_name)]
    (frozen, partial, frozen3, full) = [
        (load(eval_name)["result"]["map"], load(train_name)["result"])
        for _, train_name, eval_name in TRAINING_MODES
    ]

    def cost(mode: tuple[float, dict]) -> str:
        return f"{mode[0]:.3f} in {mode[1]['train_seconds'] / 60:.1f} min ({mode[1]['epochs_run']} epochs)"

    return (
        "The backbone is frozen by default: training any of it bought nothing measurable here, at several "
        "times the cost (image-only baseline, one seed; test mAP and training time after the features' "
        f"warm-up: frozen {cost(frozen)}; last two blocks trainable {cost(partial)}; the whole backbone "
        f"trainable {cost(full)}, against frozen {cost(frozen3)}).\n\n" + source_line(names, target)
    )


TABLES: dict[str, Callable[[Path], str]] = {
    "world-per-category": per_category,
    "world-quality": world_quality,
    "world-probes": world_probes,
    "demo": demo,
    "demo-full": demo_full,
    "headline": headline,
    "image-only-curve": attack_curve("image-only-attack-rs"),
    "world-image-only-curve": attack_curve("world-image-only-attack-rs"),
    "study-quick-curve": study_curve("study-quick-report"),
    "bench-inference": inference,
    "study-quick-verdicts": study_verdicts("study-quick-report"),
    "backdoor-slice": backdoor_slice(BACKDOOR_SLICE),
    "backdoor-headline": backdoor_headline(BACKDOOR_SLICE),
    "peer-bench": peer_bench(PEER_BENCH),
    "schedule": schedule("bench-schedule"),
    "defense-curve": study_curve("study-defenses-report"),
    "defense-verdicts": study_verdicts("study-defenses-report"),
    "defense-headline": defense_headline("study-defenses-report"),
    "training-modes": training_modes,
    "study-200-verdicts": study_verdicts("study-200-report"),
    "study-200-curve": study_curve("study-200-report"),
    "study-200-margins": clean_margins(
        [f"study-200-{arm}-rs" for arm in ("baseline-image", "baseline-fused", "joint-fused")]
    ),
    "training-modes-headline": training_modes_headline,
    "bench-backbone": backbone_bench("bench-backbone"),
    "certification": certification,
    "detectors": detectors(DETECTORS),
    "certified-and-detected": certified_and_detected,
    "peer-targets": peer_targets(PEER_BENCH),
    **{
        name: transcribed(name)
        for name in (
            "demo-cost",
            "shortcut-probes",
            "quality-resnet18",
            "joint-retrieval",
            "image-stream-levers",
            "cue-probes",
            "head-crop-probes",
            "text-ceiling",
            "study-quick",
            "curve-resnet18-image-only",
            "ablation-certification",
            "bench-attack",
            "clip-budget",
            "backbone-weights",
            "backbone-throughput",
            "backbone-modes",
            "world-iterations",
            "world-demo-cost",
        )
    },
}


def documents() -> list[Path]:
    return [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]


def render(text: str, target: Path) -> str:
    """The text with every table between markers written from its records."""

    def fill(match: re.Match) -> str:
        name = match["name"]
        if name not in TABLES:
            raise SystemExit(f"{target}: unknown results table {name!r} (known: {', '.join(sorted(TABLES))})")
        return f"{match[1]}{TABLES[name](target)}\n{match[4]}"

    return MARKER.sub(fill, text)


def stale() -> dict[Path, str]:
    """Files whose committed tables differ from what the records give, with the text they should have."""
    out = {}
    for path in documents():
        text = path.read_text()
        new = render(text, path)
        if new != text:
            out[path] = new
    return out


def record(run_dir: Path, name: str, machine: str) -> Path:
    """Keep a run's own result JSON (metrics.json, summary.json, ...) and its run.json as a record."""
    run = json.loads((run_dir / "run.json").read_text())
    for candidate in ("metrics.json", "summary.json", "report.json", "train_summary.json"):
        if (run_dir / candidate).is_file():
            result_file = candidate
            break
    else:
        raise SystemExit(f"{run_dir}: no metrics.json, summary.json, report.json or train_summary.json")
    git = run.get("git") or {}
    commit = (git.get("commit") or "unknown")[:7] + (
        " (with uncommitted changes)" if git.get("dirty") else ""
    )
    rec = {
        "command": " ".join(run["argv"]),
        "commit": commit,
        "machine": machine,
        "date": run["started"][:10],
        "source": f"run-written JSON: {run_dir.as_posix()}/{result_file}, with its run.json",
        "run": run,
        "result": json.loads((run_dir / result_file).read_text()),
    }
    path = DATA / f"{name}.json"
    path.write_text(json.dumps(rec, indent=2, ensure_ascii=False) + "\n")
    return path


def record_bench(path: Path, name: str, machine: str) -> Path:
    """Keep a bench or probe script's own JSON (``write_report``'s layout) as a record."""
    bench = json.loads(path.read_text())
    import subprocess

    commit = (
        subprocess.run(
            ["git", "rev-parse", "--short=7", "HEAD"], capture_output=True, text=True, cwd=ROOT
        ).stdout.strip()
        or "unknown"
    )
    rec = {
        "command": bench["command"],
        "commit": commit,
        "machine": machine,
        "date": bench["created"][:10],
        "source": f"bench-written JSON: {path.as_posix()}",
        "result": bench,
    }
    out = DATA / f"{name}.json"
    out.write_text(json.dumps(rec, indent=2, ensure_ascii=False) + "\n")
    return out


def record_report(report_dir: Path, name: str, machine: str) -> Path:
    """Keep an ``emotic-mm report`` folder's report.json as a record (its commands, the runs' commit)."""
    report = json.loads((report_dir / "report.json").read_text())
    runs = sorted(Path(report["runs_dir"]).rglob("run.json"))
    git = json.loads(runs[0].read_text()).get("git") or {} if runs else {}
    commit = (git.get("commit") or "unknown")[:7] + (
        " (with uncommitted changes)" if git.get("dirty") else ""
    )
    rec = {
        "command": " && ".join([*report["commands"], f"emotic-mm report runs={report['runs_dir']}"]),
        "commit": commit,
        "machine": machine,
        "date": report["generated"][:10],
        "source": f"report-written JSON: {report_dir.as_posix()}/report.json",
        "result": report,
    }
    out = DATA / f"{name}.json"
    out.write_text(json.dumps(rec, indent=2, ensure_ascii=False) + "\n")
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="only report stale files (exit 1 if any)")
    parser.add_argument("--record", type=Path, metavar="RUN_DIR", help="keep this run's JSON as a record")
    parser.add_argument(
        "--record-bench", type=Path, metavar="JSON", help="keep a bench/probe script's JSON as a record"
    )
    parser.add_argument(
        "--record-report", type=Path, metavar="DIR", help="keep an emotic-mm report folder's report.json"
    )
    parser.add_argument("--name", help="the record's name (with --record or --record-bench)")
    parser.add_argument(
        "--machine", default="2-core CPU, no GPU", help="the machine the run ran on (with --record)"
    )
    args = parser.parse_args()
    if args.record or args.record_bench or args.record_report:
        if not args.name:
            parser.error("--record, --record-bench and --record-report need --name")
        keep = (
            record(args.record, args.name, args.machine)
            if args.record
            else record_bench(args.record_bench, args.name, args.machine)
            if args.record_bench
            else record_report(args.record_report, args.name, args.machine)
        )
        print(keep)
        return
    changed = stale()
    for path, text in changed.items():
        if args.check:
            print(f"stale: {path.relative_to(ROOT)}")
        else:
            path.write_text(text)
            print(f"wrote {path.relative_to(ROOT)}")
    if args.check and changed:
        sys.exit(1)


if __name__ == "__main__":
    main()
