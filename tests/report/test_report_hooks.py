"""A new attack kind reaches the report through its registry entry alone: nothing under ``report/`` names it.

Two toy kinds are registered through the public registry API (and taken out again): one brings its own
report hooks (a table and a figure), the other none (the default: its measure pooled per setting and
model, the models compared). Runs of both, laid out as the recipes write them, come out of
``emotic_mm.stages.report.report`` as sections of ``report.md`` and entries of ``report.json``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from omegaconf import OmegaConf

from emotic_mm.attacks.registry import ATTACKS, AttackKind
from emotic_mm.figures import pyplot, save
from emotic_mm.report.hooks import Aggregate, ReportContext, ReportHooks, hooks_of
from emotic_mm.report.markdown import pct, table
from emotic_mm.report.tables import pooled, with_settings

PERSONS = 40


class ToyHooks:
    """A kind's own hooks: flips per strength and model, pooled over seeds, one bar chart."""

    def check(self, summary: dict[str, Any]) -> list[str]:
        return (
            []
            if isinstance(summary.get("strength"), int)
            else [f"strength={summary.get('strength')!r} (a level)"]
        )

    def read(self, path: Path, summary: dict[str, Any], run_dir: str) -> list[dict[str, Any]]:
        return []

    def aggregate(self, kind: AttackKind, ctx: ReportContext) -> Aggregate:
        df, keys = with_settings(ctx.collection.runs, kind)
        rates = pooled(df, [*keys, "model", "setting"], "report.successes", "report.n", "flips").reset_index()
        return Aggregate(data={"setting_keys": keys, "flips": rates}, tables={"flips": rates})

    def plot(self, kind: AttackKind, agg: Aggregate, folder: Path) -> list[tuple[str, str]]:
        rates = agg.tables["flips"]
        fig, ax = pyplot().subplots(figsize=(3, 2))
        ax.bar(rates["setting"] + " " + rates["model"], rates["flips"])
        save(fig, folder / "toy_flips.png")
        return [("toy flips", "toy_flips.png")]

    def section(self, kind: AttackKind, agg: Aggregate, figures: list[tuple[str, str]]) -> str:
        rows = [[r["setting"], r["model"], pct(r["flips"])] for _, r in agg.tables["flips"].iterrows()]
        links = [f"![{caption}]({file})" for caption, file in figures]
        return "\n\n".join([f"## {kind.title}", table(["setting", "model", "flips (%)"], rows), *links])


TOY = AttackKind(
    "toy_flip",
    "emotic_mm.recipes.toy:run",
    "toy",
    "Toy flip attack",
    "flip_rate",
    None,
    ("strength",),
    (),
    "persons",
    report=ToyHooks(),
)
PLAIN = AttackKind(
    "toy_plain",
    "emotic_mm.recipes.toy_plain:run",
    "plain",
    "Toy plain attack",
    "hit_rate",
    None,
    ("strength",),
    (),
    "persons",
)


@pytest.fixture
def toy_kinds():
    for kind in (TOY, PLAIN):
        ATTACKS.register(kind)
    try:
        yield TOY, PLAIN
    finally:
        for kind in (TOY, PLAIN):
            ATTACKS.unregister(kind.name)


def _run(root: Path, summary: dict[str, Any]) -> None:
    """A run dir as a recipe leaves it: summary.json with "attack", run.json with the seed and command."""
    root.mkdir(parents=True)
    (root / "summary.json").write_text(json.dumps(summary))
    (root / "run.json").write_text(
        json.dumps(
            {
                "stage": "attack",
                "seed": summary["seed"],
                "argv": ["emotic-mm attack", f"attack={summary['attack']}"],
            }
        )
    )


def test_a_registered_kind_reaches_the_report_through_its_hooks(toy_kinds, tmp_path):
    from emotic_mm.stages.report import report

    toy, plain = toy_kinds
    assert isinstance(hooks_of(toy), ReportHooks) and isinstance(hooks_of(plain), ReportHooks)
    runs = tmp_path / "runs"
    for seed in (0, 1):
        for model, flips in (("baseline", 10), ("joint", 30)):
            _run(
                runs / f"toy_{model}_{seed}",
                {
                    "attack": toy.name,
                    "model": model,
                    "seed": seed,
                    "strength": 2,
                    "persons": PERSONS,
                    "flip_rate": flips / PERSONS,
                },
            )
            _run(
                runs / "plain" / f"{model}_{seed}",
                {
                    "attack": plain.name,
                    "model": model,
                    "seed": seed,
                    "strength": 5,
                    "persons": PERSONS,
                    "hit_rate": (flips + 5) / PERSONS,
                },
            )
    data = report(OmegaConf.create({"runs": str(runs), "out": str(tmp_path / "out"), "overwrite": False}))

    text = (tmp_path / "out" / "report.md").read_text()
    saved = json.loads((tmp_path / "out" / "report.json").read_text())
    assert data["runs_by_kind"] == {toy.name: 4, plain.name: 4} == saved["runs_by_kind"]
    assert "toy flip attack: 4, toy plain attack: 4" in text
    # the kind's own hooks: its table, its figure
    assert "## Toy flip attack" in text and "| toy · strength=2 | joint | 75.0 |" in text
    assert "![toy flips](toy_flips.png)" in text and (tmp_path / "out" / "toy_flips.png").is_file()
    flips = {r["model"]: r for r in saved[toy.name]["flips"]}
    assert saved[toy.name]["setting_keys"] == ["strength"]
    assert (flips["joint"]["flips_k"], flips["joint"]["flips_n"]) == (60, 80) and flips["baseline"][
        "flips"
    ] == 0.25
    # no hooks: the default section, its measure pooled per setting and model and the models compared
    assert "## Toy plain attack" in text and "`hit_rate`: share of the persons" in text
    rates = {r["model"]: r for r in saved[plain.name]["rates"]}
    assert (rates["joint"]["success_k"], rates["joint"]["success_n"]) == (70, 80)
    [comparison] = saved[plain.name]["comparisons"]
    assert (comparison["a"], comparison["b"], comparison["method"]) == ("joint", "baseline", "unpaired")
    assert comparison["verdict"] == "baseline more robust"
    assert [v["kind"] for v in saved["verdicts"]] == [plain.name]
    assert "What poisoning costs" not in text  # the toy runs record no clean-model metrics


def test_the_toy_kinds_are_gone_afterwards():
    assert "toy_flip" not in ATTACKS and "toy_plain" not in ATTACKS


def test_a_kinds_own_check_names_the_file(toy_kinds, tmp_path):
    from emotic_mm.errors import DataFormatError
    from emotic_mm.report.collect import load_runs

    toy, _ = toy_kinds
    _run(
        tmp_path / "run",
        {
            "attack": toy.name,
            "model": "joint",
            "seed": 0,
            "strength": "high",
            "persons": PERSONS,
            "flip_rate": 0.5,
        },
    )
    with pytest.raises(
        DataFormatError, match=r"run/summary.json: wrong type for strength='high' \(a level\)"
    ):
        load_runs(tmp_path)
