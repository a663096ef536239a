"""The results tables of README.md and docs/ equal what scripts/results_tables.py writes from the records."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _script():
    spec = importlib.util.spec_from_file_location("results_tables", ROOT / "scripts" / "results_tables.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_committed_tables_equal_the_generated_ones():
    stale = _script().stale()
    assert not stale, "tables differ from their records; run `make docs`: " + ", ".join(
        str(p.relative_to(ROOT)) for p in stale
    )


def test_every_record_names_command_commit_machine_and_date():
    rt = _script()
    records = sorted(rt.DATA.glob("*.json"))
    assert records
    for path in records:
        rec = json.loads(path.read_text())
        for key in rt.REQUIRED:
            assert rec.get(key), f"{path.name}: no {key}"
        assert ("result" in rec) != ("rows" in rec), f"{path.name}: a run's JSON (result) or a table (rows)"


def test_every_marker_names_a_table_and_every_table_is_shown():
    rt = _script()
    shown = set()
    for path in rt.documents():
        shown |= {m["name"] for m in rt.MARKER.finditer(path.read_text())}
    assert shown <= set(rt.TABLES), sorted(shown - set(rt.TABLES))
    assert set(rt.TABLES) <= shown, f"tables no page shows: {sorted(set(rt.TABLES) - shown)}"


def test_a_changed_record_makes_the_table_stale(tmp_path, monkeypatch):
    rt = _script()
    page = tmp_path / "page.md"
    page.write_text("<!-- results:demo -->\n<!-- /results:demo -->\n")
    filled = rt.render(page.read_text(), page)
    rec = json.loads((rt.DATA / "demo-eval-baseline.json").read_text())
    assert f"{rec['result']['map']:.4f}" in filled and rt.render(filled, page) == filled
    rec["result"]["map"] = 0.5
    data = tmp_path / "data"
    data.mkdir()
    for p in rt.DATA.glob("*.json"):
        (data / p.name).write_text(p.read_text())
    (data / "demo-eval-baseline.json").write_text(json.dumps(rec))
    monkeypatch.setattr(rt, "DATA", data)
    assert rt.render(filled, page) != filled
    assert "0.5000" in rt.render(filled, page)


def test_wilson_interval_matches_the_reports():
    rt = _script()
    assert rt.rate(0, 30) == "0/30 [0, 11.4 %]"
    lo, hi = rt.wilson(45, 100)
    assert abs(lo - 0.356) < 1e-3 and abs(hi - 0.548) < 1e-3
