"""``emotic-mm report``: a fake robustness sweep written here → report.md, report.json, runs.csv, PNGs.

The sweep holds pixel runs (both models, k=1 and 3, two seeds, plus one body-surface run of the joint
model only), backdoor runs (one seed per model) and feature-collision runs (two seeds per model), laid out
at different depths with decoys (a summary.json without "attack", a .hydra folder). The numbers are
chosen so each verdict case occurs once: a clear win for joint, an exact tie, a tie within the spread,
a win for baseline with a single seed, and a setting only one model was measured in. Expected means,
stds and differences are computed here with ``statistics``, independently of pandas.
"""

from __future__ import annotations

import json
import re
import statistics
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from PIL import Image

from support import run_cli, run_cli_all

# (model, k) → success_rate_all per seed (0, 1)
PIXEL = {("baseline", 1): [0.40, 0.50], ("joint", 1): [0.20, 0.22],
         ("baseline", 3): [0.70, 0.80], ("joint", 3): [0.72, 0.78]}
BACKDOOR = {"baseline": 0.10, "joint": 0.30}          # one seed each
COLLISION = {"baseline": [0.30, 0.50], "joint": [0.20, 0.40]}
CLEAN = {"baseline": {"map": 0.30, "dominant_acc": 0.50}, "joint": {"map": 0.34, "dominant_acc": 0.56}}
SWEEP_COMMAND = ["emotic-mm attack", "-m", "experiment=robustness_study"]


# --------------------------------------------------------------------------- the fake sweep
def _run_dir(path: Path, summary: dict, seed: int, colour: int) -> None:
    path.mkdir(parents=True)
    (path / "summary.json").write_text(json.dumps(summary))
    (path / "config.yaml").write_text(yaml.safe_dump({"seed": seed, "model": {"name": summary["model"]}}))
    (path / "run.json").write_text(json.dumps({"stage": "attack", "seed": seed, "argv": SWEEP_COMMAND}))
    (path / ".hydra").mkdir()
    (path / ".hydra" / "summary.json").write_text("not json: hidden folders are never read")
    Image.fromarray(np.full((6, 8, 3), colour, np.uint8)).save(path / "examples.png")


def _pixel(model: str, k: int, seed: int, rate: float, surface: str = "context") -> dict:
    return {"attack": "pixel", "model": model, "algorithm": "de", "pixels": k, "surface": surface,
            "targeted": False, "target": None, "budget": 400, "population": 40, "resolution": "stored",
            "checkpoint": f"outputs/train/{model}/{seed}/best", "split": "test", "seed": seed, "persons": 100,
            "persons_correct": 40, "success_rate_all": rate, "success_rate_correct": rate / 2,
            "mean_queries_success": 120.0 * k, "median_queries_success": 100.0 * k + 2 * seed,
            "total_queries": 30000, "wall_seconds": 12.0, "queries_per_s": 2500.0}


def _metrics(model: str, drop: float) -> dict:
    clean = CLEAN[model]
    return {"clean": {**clean, "vad_mae": 1.0},
            "poisoned": {"map": clean["map"] - drop, "dominant_acc": clean["dominant_acc"] - 2 * drop, "vad_mae": 1.1},
            "delta_map": -drop, "delta_dominant_acc": -2 * drop}


def _backdoor(model: str, asr: float) -> dict:
    return {"attack": "poison_backdoor", "model": model, "seed": 0, "rate": 0.05, "pixels": 3, "surface": "context",
            "variant": "dirty", "target": "Fear", "asr": asr, "asr_clean_model": 0.01, **_metrics(model, 0.02),
            "poisoned_persons": 12, "triggered_persons": 80, "wall_seconds": 30.0}


def _collision(model: str, seed: int, rate: float) -> dict:
    return {"attack": "poison_collision", "model": model, "seed": seed, "n_poisons": 10, "targets": 5, "beta": 0.25,
            "epsilon": 16, "finetune": "last", "target_success_rate": rate, "target_success_rate_clean_model": 0.0,
            **_metrics(model, 0.01), "wall_seconds": 40.0}


def make_sweep(root: Path) -> Path:
    """multirun-like folder: pixel jobs at root/<n>, poisoning jobs one level deeper, decoys around them."""
    n = 0
    for (model, k), rates in PIXEL.items():
        for seed, rate in enumerate(rates):
            _run_dir(root / str(n), _pixel(model, k, seed, rate), seed, 10 * n)
            n += 1
    _run_dir(root / str(n), _pixel("joint", 1, 0, 0.05, surface="body"), 0, 200)
    for i, (model, asr) in enumerate(BACKDOOR.items()):
        _run_dir(root / "poison" / f"backdoor_{i}", _backdoor(model, asr), 0, 220 + i)
    for model, rates in COLLISION.items():
        for seed, rate in enumerate(rates):
            _run_dir(root / "poison" / f"collision_{model}_{seed}", _collision(model, seed, rate), seed, 240 + seed)
    (root / "eval_run").mkdir()
    (root / "eval_run" / "summary.json").write_text(json.dumps({"map": 0.3}))  # no "attack": not a run
    return root


N_RUNS = 8 + 1 + 2 + 4


# --------------------------------------------------------------------------- expected numbers
def mean_std(values: list[float]) -> tuple[float, float | None]:
    return statistics.mean(values), (statistics.stdev(values) if len(values) > 1 else None)


def cell(values: list[float]) -> str:
    m, s = mean_std(values)
    return f"{m * 100:.1f}" + (f" ± {s * 100:.1f}" if s is not None else "") + f" (n={len(values)})"


EXPECTED = {  # setting → (baseline values, joint values, verdict)
    "pixel · de · k=1 · context · untargeted": (PIXEL["baseline", 1], PIXEL["joint", 1],
                                                "joint more robust by 24.0 pts"),  # 24 > larger std 7.1
    "pixel · de · k=3 · context · untargeted": (PIXEL["baseline", 3], PIXEL["joint", 3],
                                                "tie (within spread)"),  # equal means
    "backdoor · rate=0.05 · k=3 · dirty-label": (
        [BACKDOOR["baseline"]], [BACKDOOR["joint"]],
        "baseline more robust by 20.0 pts (1 seed: no spread; rerun with seed=0,1,2)"),
    "collision · n_poisons=10": (COLLISION["baseline"], COLLISION["joint"], "tie (within spread)"),  # 10 ≤ std 14.1
}


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
    proc = run_cli(["report", f"runs={sweep}", f"hydra.run.dir={tmp / 'report_run'}"], cwd=tmp, timeout=120,
                   env={"COLUMNS": "300"})  # wide enough that rich wraps no verdict
    assert proc.returncode == 0, proc.stderr[-3000:]
    return sweep, sweep / "report", proc, tmp


def test_summary_table_means_differences_verdicts(reported):
    _, out, _, _ = reported
    text = (out / "report.md").read_text()
    for setting, (base, joint, verdict) in EXPECTED.items():
        rows = [r for r in md_rows(text, setting) if len(r) == 6]  # the summary table's row
        assert len(rows) == 1, (setting, text)
        _, _, b, j, diff, got = rows[0]
        assert b == cell(base) and j == cell(joint)
        assert diff == f"{(statistics.mean(joint) - statistics.mean(base)) * 100:+.1f}"
        assert got == verdict
    only_joint = md_rows(text, "pixel · de · k=1 · body · untargeted")[0]
    assert only_joint[2] == "–" and only_joint[3] == "5.0 (n=1)" and only_joint[5] == "only joint measured"


def test_report_json_holds_the_summary_as_data(reported):
    sweep, out, _, _ = reported
    data = json.loads((out / "report.json").read_text())
    assert data["runs"] == N_RUNS and data["runs_by_kind"] == {"pixel": 9, "poison_backdoor": 2, "poison_collision": 4}
    assert data["models"] == ["baseline", "joint"] and data["seeds"] == [0, 1]
    by_setting = {r["setting"]: r for r in data["summary"]}
    assert set(by_setting) == set(EXPECTED) | {"pixel · de · k=1 · body · untargeted"}
    for setting, (base, joint, verdict) in EXPECTED.items():
        row = by_setting[setting]
        for model, values in (("baseline", base), ("joint", joint)):
            m, s = mean_std(values)
            assert row["models"][model]["mean"] == pytest.approx(m)
            assert row["models"][model]["n"] == len(values)
            assert row["models"][model]["std"] == (pytest.approx(s) if s is not None else None)
        assert row["diff_joint_minus_baseline"] == pytest.approx(statistics.mean(joint) - statistics.mean(base))
        assert row["verdict"] == verdict
    assert by_setting["pixel · de · k=3 · context · untargeted"]["settings"] == {
        "algorithm": "de", "pixels": 3, "surface": "context", "targeted": False}


def test_sections_plots_and_files(reported):
    sweep, out, proc, tmp = reported
    text = (out / "report.md").read_text()
    assert f"runs folder: `{sweep}`" in text
    assert f"runs: {N_RUNS} (few-pixel evasion: 9, backdoor poisoning: 2, feature-collision poisoning: 4)" in text
    assert "seeds: 2 (0, 1)" in text and "models: baseline, joint" in text
    assert "emotic-mm attack -m experiment=robustness_study" in text and f"emotic-mm report runs={sweep}" in text
    # pixel section: success and median queries per model, surface and k
    pixel_rows = [r for r in md_rows(text, "de") if r[1:4] == ["context", "no", "baseline"]]
    assert pixel_rows == [["de", "context", "no", "baseline", cell(PIXEL["baseline", 1]), cell(PIXEL["baseline", 3])],
                          ["de", "context", "no", "baseline", "101", "301"]]  # success, then median queries
    assert ["de", "body", "no", "joint", "5.0 (n=1)", "–"] in md_rows(text, "de")
    # backdoor: ASR and the clean-model control; deltas: clean vs poisoned mAP and dominant accuracy
    backdoor = [r for r in md_rows(text, "backdoor · rate=0.05 · k=3 · dirty-label") if len(r) == 4]
    assert backdoor == [["backdoor · rate=0.05 · k=3 · dirty-label", "baseline", "10.0 (n=1)", "1.0"],
                        ["backdoor · rate=0.05 · k=3 · dirty-label", "joint", "30.0 (n=1)", "1.0"]]
    deltas = [r for r in md_rows(text, "collision · n_poisons=10") if len(r) == 9 and r[1] == "joint"]
    assert deltas == [["collision · n_poisons=10", "joint", "34.00", "33.00", "-1.0", "56.0", "54.0", "-2.0", "2"]]
    # every picture the markdown links exists, relative to report.md
    links = re.findall(r"!\[[^\]]*\]\(([^)]+)\)", text)
    assert {"success_vs_pixels.png", "asr_vs_rate.png", "clean_metric_deltas.png"} <= set(links)
    examples = [link for link in links if link.startswith("examples/")]
    assert len(examples) == 2 * 2 + 1 + 2 + 2  # one per setting and model
    for link in links:
        with Image.open(out / link) as im:
            assert im.size[0] > 0
    runs = pd.read_csv(out / "runs.csv")
    assert len(runs) == N_RUNS and {"run_dir", "kind", "setting", "model", "seed", "clean.map"} <= set(runs.columns)
    assert sorted(runs.loc[runs["kind"] == "poison_backdoor", "run_dir"]) == ["poison/backdoor_0", "poison/backdoor_1"]
    assert not list(sweep.glob(".report.*"))  # the temporary build folder is gone
    assert "joint more robust by 24.0 pts" in proc.stdout  # the rich table at the end
    assert "Warning" not in proc.stderr, proc.stderr
    info = json.loads((tmp / "report_run" / "run.json").read_text())
    assert info["stage"] == "report"


# --------------------------------------------------------------------------- bad inputs
def _malformed(root: Path) -> tuple[list[str], str]:
    sweep = root / "sweep"
    _run_dir(sweep / "0", _pixel("baseline", 1, 0, 0.5), 0, 0)
    (sweep / "1").mkdir(parents=True)
    (sweep / "1" / "summary.json").write_text('{"attack": "pixel", "model": ')
    return [f"runs={sweep}"], str(sweep / "1" / "summary.json")


def _empty(root: Path) -> tuple[list[str], str]:
    (root / "empty" / "eval").mkdir(parents=True)
    (root / "empty" / "eval" / "metrics.json").write_text("{}")
    return [f"runs={root / 'empty'}"], f"no attack or poison runs (summary.json) under {root / 'empty'}"


BAD = {
    "runs_not_set": lambda root: ([], "runs is not set"),
    "runs_missing": lambda root: ([f"runs={root / 'nowhere'}"], f"runs folder not found: {root / 'nowhere'}"),
    "no_runs": _empty,
    "malformed_summary": _malformed,
    "lacks_measure": lambda root: _lacks_measure(root),
}


def _lacks_measure(root: Path) -> tuple[list[str], str]:
    summary = _backdoor("joint", 0.3)
    del summary["asr"]
    _run_dir(root / "sweep" / "0", summary, 0, 0)
    culprit = f"{root / 'sweep' / '0' / 'summary.json'} is a 'poison_backdoor' summary without key(s) asr"
    return [f"runs={root / 'sweep'}"], culprit


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
    return {name: (proc.returncode, proc.stdout, proc.stderr, culprit, root)
            for (name, culprit, root), proc in zip(expected, run_cli_all(runs, roots))}


@pytest.mark.parametrize("case", list(BAD))
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

    from emotic_mm.report import plots
    from emotic_mm.stages.report import report

    sweep = make_sweep(tmp_path / "sweep")

    def broken(*args, **kwargs):
        raise RuntimeError("plotting failed")

    monkeypatch.setattr(plots, "success_vs_pixels", broken)
    with pytest.raises(RuntimeError, match="plotting failed"):
        report(OmegaConf.create({"runs": str(sweep), "out": None}))
    assert not (sweep / "report").exists() and not list(sweep.glob(".report.*"))


# --------------------------------------------------------------------------- in process
def test_aggregate_means_stds_and_verdicts():
    from emotic_mm.report.tables import aggregate

    rows = [{"kind": "pixel", "model": m, "seed": s, "algorithm": "rs", "pixels": 5, "surface": "scene",
             "targeted": True, "budget": b, "success_rate_all": v}
            for m, s, b, v in [("baseline", 0, 100, 0.9), ("baseline", 1, 100, 0.7), ("baseline", 2, 100, 0.8),
                               ("joint", 0, 100, 0.5), ("joint", 1, 100, 0.6), ("joint", 2, 100, 0.4),
                               ("baseline", 0, 800, 0.0), ("joint", 0, 800, 0.0)]]
    summary = aggregate(pd.DataFrame(rows)).set_index("setting")
    # budget differs between runs, so it splits the settings instead of being averaged over
    small = summary.loc["pixel · rs · k=5 · scene · targeted · budget=100"]
    assert small["baseline_mean"] == pytest.approx(0.8) and small["baseline_std"] == pytest.approx(0.1)
    assert small["joint_mean"] == pytest.approx(0.5) and small["joint_n"] == 3
    assert small["diff"] == pytest.approx(-0.3) and small["verdict"] == "joint more robust by 30.0 pts"
    zero = summary.loc["pixel · rs · k=5 · scene · targeted · budget=800"]
    assert zero["diff"] == 0 and zero["verdict"] == "tie (within spread) (1 seed: no spread; rerun with seed=0,1,2)"


def test_verdict_threshold_is_the_larger_std():
    from emotic_mm.report.tables import verdict

    assert verdict((0.50, 0.10, 3), (0.41, 0.02, 3))[1] == "tie (within spread)"
    assert verdict((0.50, 0.05, 3), (0.41, 0.02, 3))[1] == "joint more robust by 9.0 pts"
    assert verdict((0.30, 0.01, 2), (0.50, 0.01, 2))[1] == "baseline more robust by 20.0 pts"


def test_malformed_summary_names_the_file(tmp_path):
    from emotic_mm.errors import DataFormatError
    from emotic_mm.report.collect import load_runs

    (tmp_path / "a" / "b").mkdir(parents=True)
    (tmp_path / "a" / "b" / "summary.json").write_text("[1, 2]")
    with pytest.raises(DataFormatError, match=re.escape(str(tmp_path / "a" / "b" / "summary.json"))):
        load_runs(tmp_path)


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
