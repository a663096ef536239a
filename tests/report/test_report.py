"""``emotic-mm report``: a fake robustness sweep written here → report.md, report.json, runs.csv, PNGs.

The sweep has the layout the recipes write (``summary.json`` with a ``curve``, ``attack.csv`` with
``success_k{k}``/``robust_k{k}``, ``run.json``): pixel runs of two models × two modality sets × two seeds
on the same 80 persons, an older-format pixel setting (one int ``pixels`` per run, no curve, no CSV),
backdoor runs sweeping the poison rate and the trigger size for both label variants, and feature-collision
runs — at different depths, with decoys (a summary.json without "attack", a .hydra folder).

The persons' outcomes are chosen so the comparisons have known answers: the fused joint model is fooled
far more often than the fused baseline (a difference the verdict must detect), and the baseline's
image-only and fused models are fooled on exactly the same persons (no difference). Expected counts,
intervals and tests are computed here from the persons, with statsmodels, independently of the report.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from PIL import Image
from statsmodels.stats.contingency_tables import mcnemar
from statsmodels.stats.proportion import proportion_confint

from support import run_cli, run_cli_all

KS = [1, 3, 10]
PERSONS = 80
SEEDS = [0, 1]
IMAGE, FUSED = ["context", "body"], ["context", "body", "text"]
SWEEP_COMMAND = ["emotic-mm attack", "-m", "experiment=robustness_study"]
COLLISION = {
    "baseline": [[True, False, False, False, False], [False, False, False, False, False]],
    "joint": [[True, True, False, False, False], [True, False, False, False, False]],
}


# --------------------------------------------------------------------------- per-person outcomes
def needed_pixels(model: str, modalities: list[str], seed: int) -> np.ndarray:
    """Per person: the smallest k that fooled it (NaN = not within the largest k).

    The baseline (either modality set) needs k=10 for every 8th person and is not fooled otherwise; the
    fused joint model is fooled on every other person (k=1 or 3) besides — a big, known difference."""
    needed = np.full(PERSONS, np.nan)
    needed[::8] = 10
    if model == "joint" and modalities == FUSED:
        needed[1::2] = np.where(np.arange(PERSONS // 2) % 3 == 0, 1, 3)
    if model == "joint" and modalities == IMAGE:
        needed[1::4] = 3
    if seed == 1:  # the second seed is slightly harder to fool: one fewer person at k=10
        needed[0] = np.nan
    return needed


def correct_of(model: str) -> np.ndarray:
    """The clean top-1 is right for 3 of 4 persons (baseline) or 1 of 2 (joint)."""
    return np.arange(PERSONS) % (4 if model == "baseline" else 2) != 0


ANSWERS = ("Peace", "Happiness", "Engagement", "Anticipation", "Confidence")


def attack_csv(
    model: str, modalities: list[str], seed: int, answers: tuple[str, ...] = ANSWERS
) -> pd.DataFrame:
    needed, correct = needed_pixels(model, modalities, seed), correct_of(model)
    rows = []
    for i in range(PERSONS):
        row = {
            "index": 100 + i,
            "clean_top1": answers[i % len(answers)],
            "clean_correct": bool(correct[i]),
            "labels": "Peace",
            "target": "",
            "pixels_needed": None if np.isnan(needed[i]) else int(needed[i]),
            "queries": int(50 * needed[i] + i) if not np.isnan(needed[i]) else 4000,
            "success": bool(not np.isnan(needed[i])),
            "adv_top1": "Fear",
        }
        for k in KS:
            fooled = bool(needed[i] <= k)
            row.update(
                {
                    f"success_k{k}": fooled,
                    f"adv_top1_k{k}": "Fear" if fooled else "Peace",
                    f"robust_k{k}": bool(correct[i] and not fooled),
                }
            )
        rows.append(row)
    return pd.DataFrame(rows)


def summarise(table: pd.DataFrame, model: str, modalities: list[str], seed: int) -> dict:
    """summary.json as the pixel recipe writes it (the contract): the settings, then the curve."""
    correct = table["clean_correct"]
    curve = []
    for k in KS:
        hit = table[f"success_k{k}"]
        fooled = table.loc[hit, "queries"]
        curve.append(
            {
                "pixels": k,
                "successes": int(hit.sum()),
                "successes_correct": int((hit & correct).sum()),
                "success_rate_all": float(hit.mean()),
                "success_rate_correct": float(hit[correct].mean()),
                "robust_correct": int(table[f"robust_k{k}"].sum()),
                "robust_dominant_accuracy": float(table[f"robust_k{k}"].mean()),
                "mean_queries_success": float(fooled.mean()) if len(fooled) else None,
                "median_queries_success": float(fooled.median()) if len(fooled) else None,
            }
        )
    return {
        "attack": "pixel",
        "model": model,
        "modalities": modalities,
        "seed": seed,
        "algorithm": "de",
        "surface": "context",
        "targeted": False,
        "target": None,
        "budget": 400,
        "population": 40,
        "resolution": "model",
        "split": "test",
        "offset": 0,
        "pixels": KS,
        "persons": PERSONS,
        "persons_correct": int(correct.sum()),
        "clean_dominant_accuracy": float(correct.mean()),
        "curve": curve,
        "median_pixels_needed_all": None,
        "median_pixels_needed_correct": None,
        "success_rate_all": curve[-1]["success_rate_all"],
        "success_rate_correct": curve[-1]["success_rate_correct"],
        "total_queries": int(table["queries"].sum()),
        "wall_seconds": 10.0,
        "queries_per_s": 100.0,
        "checkpoint": f"/cache/models/{model}-{'+'.join(modalities)}-{seed}/best",
    }


# --------------------------------------------------------------------------- the fake sweep
def _run_dir(path: Path, summary: dict, seed: int, colour: int, table: pd.DataFrame | None = None) -> None:
    path.mkdir(parents=True)
    (path / "summary.json").write_text(json.dumps(summary))
    if table is not None:
        table.to_csv(path / "attack.csv", index=False)
    (path / "config.yaml").write_text(yaml.safe_dump({"seed": seed, "model": {"name": summary["model"]}}))
    (path / "run.json").write_text(
        json.dumps({"stage": "attack", "seed": seed, "argv": [*SWEEP_COMMAND, f"seed={seed}"]})
    )
    (path / ".hydra").mkdir()
    (path / ".hydra" / "summary.json").write_text("not json: hidden folders are never read")
    Image.fromarray(np.full((6, 8, 3), colour % 256, np.uint8)).save(path / "examples.png")


def _old_pixel(k: int, rate: float) -> dict:
    """An older pixel summary: one int ``pixels``, the rates at that k, no curve (and no attack.csv)."""
    return {
        "attack": "pixel",
        "model": "baseline",
        "algorithm": "rs",
        "pixels": k,
        "surface": "body",
        "targeted": False,
        "target": None,
        "budget": 400,
        "population": 40,
        "resolution": "model",
        "split": "test",
        "seed": 0,
        "persons": 50,
        "persons_correct": 20,
        "success_rate_all": rate,
        "success_rate_correct": rate / 2,
        "mean_queries_success": 120.0 * k,
        "median_queries_success": 100.0 * k,
        "total_queries": 30000,
        "wall_seconds": 12.0,
        "queries_per_s": 2500.0,
    }


CLEAN = {
    "baseline": {"map": 0.30, "dominant_acc": 0.50, "vad_mae": 1.0},
    "joint": {"map": 0.34, "dominant_acc": 0.56, "vad_mae": 1.0},
}


def _backdoor(model: str, seed: int, rate: float, pixels: int, variant: str, asr: float) -> dict:
    clean = CLEAN[model]
    return {
        "attack": "poison_backdoor",
        "model": model,
        "seed": seed,
        "rate": rate,
        "pixels": pixels,
        "surface": "context",
        "variant": variant,
        "target": "Fear",
        "asr": asr,
        "asr_clean_model": 0.0125,
        "clean": clean,
        "poisoned": {**clean, "map": clean["map"] - 0.01},
        "delta_map": -0.01,
        "delta_dominant_acc": 0.0,
        "triggered_persons": 80,
        "checkpoint_clean": f"/cache/models/{model}-context+body+text-{seed}/best",
        "wall_seconds": 30.0,
    }


def backdoor_asr(model: str, seed: int, rate: float, pixels: int, variant: str) -> float:
    """ASR out of 80: grows with rate and size; the joint model resists the dirty-label trigger."""
    hits = int(min(80, 400 * rate + 2 * pixels)) if (model == "baseline" or variant == "clean") else seed + 1
    return hits / 80


BACKDOOR_SETTINGS = [(rate, 16) for rate in (0.01, 0.05, 0.1)] + [(0.05, 4)]


def make_sweep(root: Path) -> Path:
    """multirun-like folder: pixel jobs at root/<n>, poisoning jobs one level deeper, decoys around them."""
    n = 0
    for model in ("baseline", "joint"):
        for modalities in (IMAGE, FUSED):
            for seed in SEEDS:
                table = attack_csv(model, modalities, seed)
                _run_dir(root / str(n), summarise(table, model, modalities, seed), seed, 10 * n, table)
                n += 1
    for k, rate in ((1, 0.10), (3, 0.30)):
        _run_dir(root / "old" / f"k{k}", _old_pixel(k, rate), 0, 100 + k)
    for model in ("baseline", "joint"):
        for variant in ("dirty", "clean"):
            for seed in SEEDS:
                for rate, pixels in BACKDOOR_SETTINGS:
                    name = f"{model}_{variant}_{seed}_{rate}_{pixels}"
                    _run_dir(
                        root / "poison" / name,
                        _backdoor(
                            model,
                            seed,
                            rate,
                            pixels,
                            variant,
                            backdoor_asr(model, seed, rate, pixels, variant),
                        ),
                        seed,
                        200 + seed,
                    )
    for model, outcomes in COLLISION.items():
        for seed, success in enumerate(outcomes):
            summary = {
                "attack": "poison_collision",
                "model": model,
                "seed": seed,
                "n_poisons": 10,
                "targets": 5,
                "target_success_rate": sum(success) / 5,
                "target_success": success,
                "clean": CLEAN[model],
                "poisoned": CLEAN[model],
                "delta_map": 0.0,
                "delta_dominant_acc": 0.0,
                "wall_seconds": 40.0,
            }
            _run_dir(root / "poison" / f"collision_{model}_{seed}", summary, seed, 240 + seed)
    (root / "eval_run").mkdir()
    (root / "eval_run" / "summary.json").write_text(json.dumps({"map": 0.3}))  # no "attack": not a run
    return root


N_PIXEL = 2 * 2 * 2 + 2
N_BACKDOOR = 2 * 2 * 2 * len(BACKDOOR_SETTINGS)
N_RUNS = N_PIXEL + N_BACKDOOR + 4
# the old runs have no offset
SETTING = "pixel · de · context · untargeted · budget=400 · resolution=model · offset=0"


# --------------------------------------------------------------------------- expected numbers
def pooled_success(model: str, modalities: list[str], k: int) -> tuple[int, int]:
    hits = sum(int((needed_pixels(model, modalities, s) <= k).sum()) for s in SEEDS)
    return hits, PERSONS * len(SEEDS)


def wilson_text(k: int, n: int) -> str:
    low, high = proportion_confint(k, n, method="wilson")
    return f"{k / n * 100:.1f} [{low * 100:.1f}, {high * 100:.1f}]"


def md_rows(text: str, first_cell: str) -> list[list[str]]:
    rows = []
    for line in text.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if line.startswith("|") and cells[0] == first_cell:
            rows.append(cells)
    return rows


# --------------------------------------------------------------------------- the CLI end to end
@pytest.fixture(scope="module")
def reported(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("report")
    sweep = make_sweep(tmp / "multirun" / "2026-01-01" / "10-00-00")
    proc = run_cli(
        ["report", f"runs={sweep}", f"hydra.run.dir={tmp / 'report_run'}"],
        cwd=tmp,
        timeout=180,
        env={"COLUMNS": "400"},
    )  # wide enough that rich wraps no verdict
    assert proc.returncode == 0, proc.stderr[-3000:]
    return sweep, sweep / "report", proc, tmp


@pytest.mark.slow  # CLI report round trip (module fixture)
def test_success_curve_pools_seeds_with_wilson_intervals(reported):
    _, out, _, _ = reported
    text = (out / "report.md").read_text()
    rows = {r[1]: r for r in md_rows(text, SETTING) if len(r) == 4 + len(KS) and r[2].endswith("seeds")}
    assert set(rows) == {
        "baseline · context+body",
        "baseline · context+body+text",
        "joint · context+body",
        "joint · context+body+text",
    }
    for arm, row in rows.items():
        model, mods = arm.split(" · ")
        modalities = mods.split("+")
        assert row[2] == f"{PERSONS * 2} persons = {PERSONS} × 2 seeds" and row[3] == "0, 1"
        for k, cell in zip(KS, row[4:]):
            hits, n = pooled_success(model, modalities, k)
            per_seed = [(needed_pixels(model, modalities, s) <= k).mean() for s in SEEDS]
            expected = wilson_text(hits, n) + f" sd {np.std(per_seed, ddof=1) * 100:.1f}"
            assert cell == expected, (arm, k, cell, expected)


@pytest.mark.slow  # CLI report round trip (module fixture)
def test_report_json_holds_every_number(reported):
    _, out, _, _ = reported
    data = json.loads((out / "report.json").read_text())
    assert data["runs"] == N_RUNS and data["seeds"] == [0, 1] and data["models"] == ["baseline", "joint"]
    assert data["runs_by_kind"] == {"pixel": N_PIXEL, "poison_backdoor": N_BACKDOOR, "poison_collision": 4}
    assert any("experiment=robustness_study seed=1" in c for c in data["commands"])
    curve = {(r["setting"], r["arm"], r["k"]): r for r in data["pixel"]["curve"]}
    point = curve[SETTING, "joint · context+body+text", 10]
    hits, n = pooled_success("joint", FUSED, 10)
    low, high = proportion_confint(hits, n, method="wilson")
    assert (point["success_k"], point["success_n"]) == (hits, n)
    assert point["success_low"] == pytest.approx(low) and point["success_high"] == pytest.approx(high)
    assert point["n_by_seed"] == {"0": PERSONS, "1": PERSONS} and point["seeds"] == [0, 1]
    correct = correct_of("joint")
    robust = sum(int((correct & ~(needed_pixels("joint", FUSED, s) <= 10)).sum()) for s in SEEDS)
    assert point["robust_k"] == robust and point["clean"] == pytest.approx(correct.mean())
    # median queries pooled over the fooled persons of both seeds
    queries = pd.concat([attack_csv("joint", FUSED, s) for s in SEEDS])
    assert point["median_queries"] == pytest.approx(queries.loc[queries["success_k10"], "queries"].median())
    # the older-format setting aggregates as a one-point curve per run
    old = {r["k"]: r for r in data["pixel"]["curve"] if r["setting"].startswith("pixel · rs · body")}
    assert sorted(old) == [1, 3] and (old[1]["success_k"], old[1]["success_n"]) == (5, 50)
    assert old[3]["success"] == pytest.approx(0.3) and old[3]["robust_k"] is None
    # clean mAP of a pixel arm: measured by the backdoor runs on the same clean checkpoint
    arms = {(r["setting"], r["arm"]): r for r in data["pixel"]["arms"]}
    assert arms[SETTING, "joint · context+body+text"]["clean_map_mean"] == pytest.approx(0.34)
    assert arms[SETTING, "joint · context+body"]["clean_map_mean"] is None


@pytest.mark.slow  # CLI report round trip (module fixture)
def test_paired_comparisons_and_verdicts(reported):
    _, out, proc, _ = reported
    data = json.loads((out / "report.json").read_text())
    paired = {(r["factor"], r["held"], r["a"], r["b"], r["k"]): r for r in data["pixel"]["paired"]}
    # joint vs baseline, fused: the joint model is fooled on half the persons besides → detected
    row = paired["model", "context+body+text", "joint", "baseline", 10]
    a = np.concatenate([needed_pixels("joint", FUSED, s) <= 10 for s in SEEDS])
    b = np.concatenate([needed_pixels("baseline", FUSED, s) <= 10 for s in SEEDS])
    assert row["n"] == 2 * PERSONS and row["diff"] == pytest.approx(a.mean() - b.mean())
    assert row["only_a"] == int((a & ~b).sum()) and row["only_b"] == int((~a & b).sum())
    table = [[int((a & b).sum()), int((a & ~b).sum())], [int((~a & b).sum()), int((~a & ~b).sum())]]
    assert row["pvalue"] == pytest.approx(mcnemar(table, exact=True).pvalue)
    assert 0 < row["low"] < row["diff"] < row["high"]
    assert row["verdict"] == "baseline more robust"
    # fused vs image-only for the baseline: the same persons fooled → nothing to detect
    same = paired["modalities", "baseline", "context+body+text", "context+body", 10]
    assert same["diff"] == 0 and same["low"] == same["high"] == 0 and same["pvalue"] == 1
    assert same["verdict"] == "no difference detected at this n"
    # where the difference is small (2 discordant pairs), no verdict either
    small = paired["model", "context+body", "joint", "baseline", 1]
    assert small["verdict"] == "no difference detected at this n"
    text = (out / "report.md").read_text()
    verdict_rows = md_rows(text, "joint vs baseline")
    fused = [r for r in verdict_rows if r[2] == "context+body+text" and len(r) == 8]
    assert len(fused) == 1 and fused[0][6] == "baseline more robust"
    assert fused[0][3] == f"{2 * PERSONS} pairs at k=10, seeds 0, 1"
    assert "k=1: baseline more robust; k=3: baseline more robust; k=10: baseline more robust" == fused[0][7]
    assert "baseline more robust" in proc.stdout  # the verdicts printed at the end


@pytest.mark.slow  # CLI report round trip (module fixture)
def test_sections_plots_and_files(reported):
    sweep, out, proc, tmp = reported
    text = (out / "report.md").read_text()
    assert f"runs folder: `{sweep}`" in text
    assert (
        f"runs: {N_RUNS} (few-pixel evasion: {N_PIXEL}, backdoor poisoning: {N_BACKDOOR}, feature-collision "
        "poisoning: 4)" in text
    )
    assert (
        "seeds: 2 (0, 1)" in text and "modality sets (pixel attacks): context+body, context+body+text" in text
    )
    assert (
        "emotic-mm attack -m experiment=robustness_study seed=0" in text
        and f"emotic-mm report runs={sweep}" in text
    )
    for needle in (
        "Wilson 95 %",
        "paired bootstrap",
        "McNemar",
        "no difference detected at this n",
        "Clean and robust accuracy (RobustBench-style)",
        "Paired differences",
        "median pixels needed",
    ):
        assert needle in text, needle
    # RobustBench row: clean accuracy, robust accuracy per k, median queries, pixels needed
    rb = [
        r
        for r in md_rows(text, SETTING)
        if r[1] == "baseline · context+body+text" and len(r) == 6 + len(KS) + 2
    ]
    assert len(rb) == 1
    correct = correct_of("baseline")
    assert rb[0][4] == "30.00 sd 0.00 (2 seeds)"  # clean mAP from the backdoor runs' clean checkpoint
    assert rb[0][5] == wilson_text(int(correct.sum()) * 2, 2 * PERSONS) + " sd 0.0"
    assert rb[0][-1] == "> 10 / > 10"  # 1 person in 8 fooled: the median person never is
    # backdoor: ASR pooled over seeds with intervals; between models: Newcombe + Fisher
    rows = md_rows(text, "backdoor · rate=0.05 · 16 px · dirty-label")
    asr = [r for r in rows if len(r) == 8 and r[1] == "baseline"]
    hits = int(80 * backdoor_asr("baseline", 0, 0.05, 16, "dirty"))
    assert (
        asr[0][2] == "160 triggered persons = 80 × 2 seeds"
        and asr[0][4] == wilson_text(2 * hits, 160) + " sd 0.0"
    )
    [dirty] = [
        r
        for r in md_rows(text, "joint vs baseline")
        if r[1] == "backdoor · rate=0.05 · 16 px · dirty-label" and len(r) == 9
    ]
    assert dirty[3] == "unpaired" and dirty[8] == "joint more robust"  # the fake runs left no triggered.csv
    collision = [r for r in md_rows(text, "collision · n_poisons=10") if len(r) == 7 and r[1] == "joint"]
    assert collision[0][2] == "10 targets = 5 × 2 seeds" and collision[0][4].startswith(wilson_text(3, 10))
    # every picture the markdown links exists, relative to report.md
    links = re.findall(r"!\[[^\]]*\]\(([^)]+)\)", text)
    assert {
        "success_vs_pixels.png",
        "asr_vs_rate.png",
        "asr_vs_trigger_size.png",
        "clean_metric_deltas.png",
    } <= set(links)
    for link in links:
        with Image.open(out / link) as im:  # the report's own plots: something drawn, not a blank canvas
            assert link.startswith("examples/") or (
                im.size[0] > 100 and len(set(im.convert("L").getdata())) > 2
            ), link
    examples = [link for link in links if link.startswith("examples/")]
    assert len(examples) == 4 + 1 + 2 * 2 * len(BACKDOOR_SETTINGS) + 2  # one per setting and arm
    runs = pd.read_csv(out / "runs.csv")
    assert len(runs) == N_RUNS and {"run_dir", "kind", "setting", "arm", "model", "seed", "clean.map"} <= set(
        runs.columns
    )
    assert not list(sweep.glob(".report.*"))  # the temporary build folder is gone
    assert "Warning" not in proc.stderr, proc.stderr
    info = json.loads((tmp / "report_run" / "run.json").read_text())
    assert info["stage"] == "report"


# --------------------------------------------------------------------------- bad inputs
def _malformed(root: Path) -> tuple[list[str], str]:
    sweep = root / "sweep"
    _run_dir(sweep / "0", _old_pixel(1, 0.5), 0, 0)
    (sweep / "1").mkdir(parents=True)
    (sweep / "1" / "summary.json").write_text('{"attack": "pixel", "model": ')
    return [f"runs={sweep}"], str(sweep / "1" / "summary.json")


def _empty(root: Path) -> tuple[list[str], str]:
    (root / "empty" / "eval").mkdir(parents=True)
    (root / "empty" / "eval" / "metrics.json").write_text("{}")
    return [f"runs={root / 'empty'}"], f"no attack or poison runs (summary.json) under {root / 'empty'}"


def _lacks_measure(root: Path) -> tuple[list[str], str]:
    summary = _backdoor("joint", 0, 0.05, 16, "dirty", 0.3)
    del summary["asr"]
    _run_dir(root / "sweep" / "0", summary, 0, 0)
    culprit = f"{root / 'sweep' / '0' / 'summary.json'} is a 'poison_backdoor' summary without key(s) asr"
    return [f"runs={root / 'sweep'}"], culprit


def _csv_lacks_k(root: Path) -> tuple[list[str], str]:
    table = attack_csv("joint", FUSED, 0)
    _run_dir(
        root / "sweep" / "0", summarise(table, "joint", FUSED, 0), 0, 0, table.drop(columns=["success_k3"])
    )
    return [f"runs={root / 'sweep'}"], f"{root / 'sweep' / '0' / 'attack.csv'} has no column success_k3"


def _curve_entry(root: Path) -> tuple[list[str], str]:
    table = attack_csv("joint", FUSED, 0)
    summary = summarise(table, "joint", FUSED, 0)
    summary["curve"][1]["successes"] = PERSONS + 1
    _run_dir(root / "sweep" / "0", summary, 0, 0, table)
    return [
        f"runs={root / 'sweep'}"
    ], f"curve[1]: wrong type for successes={PERSONS + 1} (a count ≤ {PERSONS})"


BAD = {
    "runs_not_set": lambda root: ([], "runs is not set"),
    "runs_missing": lambda root: ([f"runs={root / 'nowhere'}"], f"runs folder not found: {root / 'nowhere'}"),
    "no_runs": _empty,
    "malformed_summary": _malformed,
    "lacks_measure": _lacks_measure,
    "csv_lacks_k": _csv_lacks_k,
    "curve_entry": _curve_entry,
}


@pytest.fixture(scope="module")
def bad_runs(tmp_path_factory):
    """Every bad-input run at once (separate processes, so their start-up overlaps)."""
    runs, roots, expected = [], [], []
    for name, make in BAD.items():
        root = tmp_path_factory.mktemp(name)
        overrides, culprit = make(root)
        runs.append(["report", *overrides, f"hydra.run.dir={root / 'run'}"])
        roots.append(root)
        expected.append((name, culprit, root))
    return {
        name: (proc.returncode, proc.stdout, proc.stderr, culprit, root)
        for (name, culprit, root), proc in zip(expected, run_cli_all(runs, roots))
    }


@pytest.mark.parametrize("case", list(BAD))
@pytest.mark.slow  # CLI: module fixture starts several emotic-mm report
def test_bad_input_gives_one_clear_line(bad_runs, case):
    code, out, err, culprit, root = bad_runs[case]
    lines = [line for line in err.splitlines() if line.strip()]
    assert code == 2, err
    assert "Traceback" not in err + out
    assert len(lines) == 1, err
    assert lines[0].startswith("emotic-mm report: error: ") and culprit in lines[0], lines[0]
    assert not [p for p in root.rglob("report*") if p.is_dir() and p.name != "run"]  # no report folder left
    assert not list(root.rglob(".report.*"))  # and no half-built one


def test_a_failure_while_building_leaves_no_report(tmp_path, monkeypatch):
    """An error after the output folder was started (here: a plot) removes the half-built report."""
    from omegaconf import OmegaConf

    from emotic_mm.report import pixel_plots as plots
    from emotic_mm.stages.report import report

    sweep = make_sweep(tmp_path / "sweep")

    def broken(*args, **kwargs):
        raise RuntimeError("plotting failed")

    monkeypatch.setattr(plots, "success_vs_pixels", broken)
    with pytest.raises(RuntimeError, match="plotting failed"):
        report(OmegaConf.create({"runs": str(sweep), "out": None}))
    assert not (sweep / "report").exists() and not list(sweep.glob(".report.*"))


# --------------------------------------------------------------------------- in process
def _pixel_rows(rates: dict[tuple[str, int], float], persons: int = 100) -> pd.DataFrame:
    rows = [
        {
            "kind": "pixel",
            "run_dir": f"{m}/{b}/{s}",
            "model": m,
            "seed": s,
            "algorithm": "rs",
            "pixels": 5,
            "surface": "scene",
            "targeted": True,
            "budget": b,
            "resolution": "model",
            "persons": persons,
            "success_rate_all": r,
        }
        for (m, s, b), r in rates.items()
    ]
    return pd.DataFrame(rows)


def test_old_summaries_pool_over_seeds_and_keep_settings_apart():
    from emotic_mm.attacks.registry import ATTACKS
    from emotic_mm.report.pixel_tables import pixel_curve

    runs = _pixel_rows(
        {
            ("baseline", 0, 100): 0.9,
            ("baseline", 1, 100): 0.7,
            ("baseline", 2, 100): 0.8,
            ("joint", 0, 100): 0.5,
            ("joint", 1, 100): 0.6,
            ("joint", 0, 800): 0.0,
        }
    )
    points = pd.DataFrame(
        {
            "run_dir": runs["run_dir"],
            "k": 5,
            "persons": 100,
            "persons_correct": np.nan,
            "successes": (runs["success_rate_all"] * 100).round(),
            "successes_correct": np.nan,
            "robust_correct": np.nan,
            "mean_queries": np.nan,
            "median_queries": np.nan,
        }
    )
    curve, keys = pixel_curve(
        ATTACKS.get("pixel"), runs, points, pd.DataFrame(columns=["run_dir", "seed", "index", "k", "success"])
    )
    curve = curve.set_index(["setting", "arm"])
    # budget differs between runs, so it splits the settings instead of being pooled over
    small = curve.loc[("pixel · rs · scene · targeted · budget=100 · resolution=model", "baseline")]
    assert (small["success_k"], small["success_n"]) == (240, 300) and small["success"] == pytest.approx(0.8)
    assert small["success_seed_mean"] == pytest.approx(0.8) and small["success_seed_std"] == pytest.approx(
        0.1
    )
    assert (small["success_low"], small["success_high"]) == pytest.approx(
        proportion_confint(240, 300, method="wilson")
    )
    assert small["n_by_seed"] == {0: 100, 1: 100, 2: 100}
    big = curve.loc[("pixel · rs · scene · targeted · budget=800 · resolution=model", "joint")]
    assert big["success_k"] == 0 and big["success_low"] == 0 and big["success_high"] > 0
    assert np.isnan(big["success_correct"])  # no persons_correct recorded: no rate, not a wrong one


def test_malformed_summary_names_the_file(tmp_path):
    from emotic_mm.errors import DataFormatError
    from emotic_mm.report.collect import load_runs

    (tmp_path / "a" / "b").mkdir(parents=True)
    (tmp_path / "a" / "b" / "summary.json").write_text("[1, 2]")
    with pytest.raises(DataFormatError, match=re.escape(str(tmp_path / "a" / "b" / "summary.json"))):
        load_runs(tmp_path)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda s: s.pop("persons"), "summary without key(s) persons"),
        (lambda s: s.pop("seed"), "no seed in summary.json or run.json"),
        (lambda s: s.update(modalities="context"), "wrong type for modalities='context'"),
        (lambda s: s["curve"][0].pop("successes"), "curve[0] has no key successes"),
        (lambda s: s["curve"].append(dict(s["curve"][0])), "curve[3]: pixels=1 appears twice"),
    ],
)
def test_a_pixel_summary_the_report_cannot_use_is_named(tmp_path, change, message):
    from emotic_mm.errors import DataFormatError
    from emotic_mm.report.collect import load_runs

    summary = summarise(attack_csv("joint", FUSED, 0), "joint", FUSED, 0)
    change(summary)
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "summary.json").write_text(json.dumps(summary))
    with pytest.raises(DataFormatError, match=re.escape(message)):
        load_runs(tmp_path)


def test_attack_csv_rows_must_match_the_summary(tmp_path):
    from emotic_mm.errors import DataFormatError
    from emotic_mm.report.collect import load_persons, load_runs

    table = attack_csv("joint", FUSED, 0)
    _run_dir(tmp_path / "run", summarise(table, "joint", FUSED, 0), 0, 0, table.iloc[:-1])
    with pytest.raises(
        DataFormatError,
        match=rf"attack.csv has {PERSONS - 1} rows but its summary.json says persons={PERSONS}",
    ):
        load_persons(load_runs(tmp_path))
    table["success_k1"] = table["success_k1"].astype(object)
    table.loc[3, "success_k1"] = "maybe"
    table.to_csv(tmp_path / "run" / "attack.csv", index=False)
    with pytest.raises(DataFormatError, match="column success_k1 holds 'maybe' \\(row 5\\)"):
        load_persons(load_runs(tmp_path))


def test_out_never_replaces_the_runs(tmp_path):
    from omegaconf import OmegaConf

    from emotic_mm.errors import ConfigError
    from emotic_mm.stages.report import output_folder

    sweep = tmp_path / "multirun" / "x"
    sweep.mkdir(parents=True)
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "keep.txt").write_text("x")
    for out in (sweep, tmp_path / "multirun", tmp_path / "other"):
        with pytest.raises(ConfigError, match="out="):
            output_folder(OmegaConf.create({"runs": str(sweep), "out": str(out)}), sweep)
    assert output_folder(OmegaConf.create({"runs": str(sweep), "out": None}), sweep) == sweep / "report"


# --------------------------------------------------------------------------- defenses
def test_defense_section_pools_certificates_detection_and_strip(tmp_path):
    """Pixel runs on an ablation checkpoint with certificates, backdoor runs with spectral filtering and with
    STRIP: the Defenses section pools each count over seeds with its Wilson interval, and flags a soundness
    violation."""
    from omegaconf import OmegaConf

    from emotic_mm.stages.report import report

    root = tmp_path / "sweep"
    for seed, (at_2, violations) in enumerate([(30, 0), (20, 1)]):
        table = attack_csv("baseline", FUSED, seed)
        summary = {
            **summarise(table, "baseline", FUSED, seed),
            "defense": "ablation",
            "certified": {"persons": PERSONS, "at": {"0": 50, "2": at_2}, "abstained": 4},
            "soundness": {
                "persons": PERSONS,
                "certified_persons": 76,
                "checked_person_k": 100,
                "violations": violations,
                "violating_persons": [3] if violations else [],
                "sound": not violations,
            },
        }
        _run_dir(root / f"pixel{seed}", summary, seed, 10, table)
    for seed in SEEDS:
        spectral = {
            **_backdoor("baseline", seed, 0.05, 16, "dirty", 0.5),
            "defense": "spectral",
            "detection": {"tpr": 0.9, "fpr": 0.1, "flagged": 28, "poisoned": 10, "rows": 200},
            "after_defense": {"map": 0.29, "dominant_acc": 0.5, "asr": 0.125},
        }
        _run_dir(root / f"spectral{seed}", spectral, seed, 20)
        strip = {
            **_backdoor("baseline", seed, 0.05, 16, "dirty", 0.5),
            "defense": "strip",
            "strip": {
                "threshold": 0.1,
                "frr_target": 0.01,
                "calibration_persons": 50,
                "false_rejection": 0.02,
                "clean_persons": 50,
                "false_acceptance": 0.25,
                "triggered_persons": 40,
            },
        }
        _run_dir(root / f"strip{seed}", strip, seed, 30)
    data = report(OmegaConf.create({"runs": str(root), "out": str(tmp_path / "out"), "overwrite": False}))
    text = (tmp_path / "out" / "report.md").read_text()
    assert "## Defenses" in text and data["defenses"]["radii"] == [0, 2]
    [row] = [r for r in md_rows(text, data["defenses"]["certified"][0]["setting"]) if len(r) == 8]
    assert row[4].startswith(wilson_text(100, 160)) and row[5].startswith(wilson_text(50, 160))
    assert row[7] == "1 of 200 — WRONG"
    [robustbench] = [
        r for r in md_rows(text, data["defenses"]["certified"][0]["setting"]) if len(r) == 6 + len(KS) + 3
    ]
    assert robustbench[-1] == "62.5 / 31.2"  # the certified column of the RobustBench-style row
    [spectral] = [r for r in data["defenses"]["poisoning"] if r["tpr_n"] == 20]
    assert (spectral["tpr_k"], spectral["fpr_k"], spectral["fpr_n"], spectral["asr_after_k"]) == (
        18,
        38,
        380,
        20,
    )
    [strip] = [r for r in data["defenses"]["poisoning"] if r["far_n"] == 80]
    assert (strip["far_k"], strip["frr_k"], strip["frr_n"]) == (20, 2, 100)
    assert wilson_text(18, 20) in text and wilson_text(20, 80) in text


def test_backdoor_runs_with_triggered_csv_are_compared_paired(tmp_path):
    """Both variants poisoned under the same seeds leave triggered.csv: the model comparison pairs the
    triggered persons on (seed, index) — McNemar on the discordant persons, paired bootstrap — instead of
    comparing counts."""
    from omegaconf import OmegaConf

    from emotic_mm.stages.report import report

    root, triggered = tmp_path / "sweep", 80
    for seed in SEEDS:
        for model, fooled in (("baseline", 40), ("joint", 10)):  # joint's hits are a subset of baseline's
            hits = np.arange(triggered) < fooled
            _run_dir(
                root / f"{model}{seed}",
                _backdoor(model, seed, 0.05, 16, "dirty", fooled / triggered),
                seed,
                40,
            )
            pd.DataFrame(
                {"index": np.arange(triggered) + 7, "hit_clean": False, "hit_poisoned": hits}
            ).to_csv(root / f"{model}{seed}" / "triggered.csv", index=False)
    data = report(OmegaConf.create({"runs": str(root), "out": str(tmp_path / "out"), "overwrite": False}))
    [row] = data["poison_backdoor"]["comparisons"]
    assert (row["method"], row["n_a"], row["a"], row["b"]) == ("paired", 160, "joint", "baseline")
    assert (
        row["rate_a"] == 0.125
        and row["rate_b"] == 0.5
        and row["high"] < 0
        and row["verdict"] == "joint more robust"
    )
    assert row["pvalue"] == pytest.approx(mcnemar([[20, 60], [0, 80]], exact=True).pvalue)
    (tmp_path / "sweep" / "joint0" / "triggered.csv").write_text("index,hit_poisoned\n1,True\n")
    with pytest.raises(
        Exception, match="triggered.csv has 1 rows but its summary.json says triggered_persons=80"
    ):
        report(OmegaConf.create({"runs": str(root), "out": str(tmp_path / "out2"), "overwrite": False}))


@pytest.mark.slow  # CLI report
def test_an_arm_answering_everyone_alike_is_not_comparable(tmp_path):
    """A clean model that gives 90 % or more of the attacked persons one answer is never called more (or
    less) robust: it is not flipped because it does not look at the picture."""
    root = tmp_path / "sweep"
    n = 0
    for model in ("baseline", "joint"):
        for seed in SEEDS:
            table = attack_csv(model, FUSED, seed, answers=("Engagement",) if model == "joint" else ANSWERS)
            _run_dir(root / str(n), summarise(table, model, FUSED, seed), seed, n, table)
            n += 1
    proc = run_cli(["report", f"runs={root}", f"hydra.run.dir={tmp_path / 'run'}"], cwd=tmp_path, timeout=180)
    assert proc.returncode == 0, proc.stderr[-3000:]
    data = json.loads((root / "report" / "report.json").read_text())
    rows = [r for r in data["pixel"]["paired"] if r["factor"] == "model"]
    assert rows and all(
        r["verdict"] == f"not comparable: joint's clean model answers Engagement for "
        f"{2 * PERSONS}/{2 * PERSONS} persons"
        for r in rows
    )
    assert rows[-1]["low"] < rows[-1]["diff"] < rows[-1]["high"]  # the interval is still reported
    summary = [v for v in data["verdicts"] if v["factor"] == "model"]
    assert summary and summary[0]["detected_at"] == []


def test_an_input_defense_is_compared_with_no_defense_on_the_same_persons():
    """Runs that differ only in ``defense`` pair up as "median vs none"; the undefended arm's label carries
    no defense, the defended one names it."""
    from emotic_mm.attacks.registry import ATTACKS
    from emotic_mm.report.pixel_tables import paired_comparisons, pixel_runs

    kind = ATTACKS.get("pixel")
    runs = _pixel_rows({("baseline", 0, 100): 0.3, ("baseline", 0, 101): 0.0})
    runs["defense"] = ["none", "median"]
    runs["budget"] = 100
    runs["run_dir"] = ["none", "median"]
    fooled_without = np.arange(40) % 3 == 0  # 14 of 40, none of them with the median filter
    persons = pd.DataFrame(
        {
            "run_dir": ["none"] * 40 + ["median"] * 40,
            "seed": 0,
            "index": list(range(40)) * 2,
            "k": 5,
            "success": np.concatenate([fooled_without, np.zeros(40, bool)]).astype(int),
            "clean_top1": [ANSWERS[i % 5] for i in range(40)] * 2,
        }
    )
    df, _, arms = pixel_runs(kind, runs)
    assert "defense" in arms
    assert set(df["arm"]) == {"baseline", "baseline · median"}
    paired = paired_comparisons(kind, runs, persons, resamples=2000)
    row = paired[paired["factor"] == "defense"].iloc[0]
    assert (row["a"], row["b"], row["n"]) == ("median", "none", 40)
    assert row["diff"] == pytest.approx(-14 / 40) and row["high"] < 0
    assert row["verdict"] == "median more robust"
