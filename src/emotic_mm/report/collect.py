"""Find the attack and poisoning run dirs under a folder and read them into pandas tables.

A run dir is any folder holding a ``summary.json`` whose ``"attack"`` key names a known kind; it may sit at
any depth (a multirun folder, a folder of single runs, a folder of sweeps). Three tables come out:

* ``runs``: one row per run, the flattened summary (absent optional keys become NaN);
* ``points``: one row per pixel run and pixel budget k, the counts behind each rate (from the summary's
  ``curve``; a summary with a single int ``pixels`` and no curve is a one-point curve whose counts
  are its rates times its persons);
* ``persons`` (:func:`load_persons`): one row per pixel run, person and k, from ``attack.csv`` — what
  the paired comparisons match on ``(seed, index)``.

Only the keys each kind's summary is documented to have are relied on. A summary or CSV that cannot be
used is a user-facing error naming the file and the key, because silently dropping or misreading a run
would bias every rate in the report.
"""

from __future__ import annotations

import json
import logging
import math
import shlex
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from emotic_mm.attacks.registry import ATTACKS, AttackKind
from emotic_mm.errors import DataFormatError
from emotic_mm.report.hooks import hooks_of

log = logging.getLogger(__name__)

POINT_COLUMNS = [
    "run_dir",
    "k",
    "persons",
    "persons_correct",
    "successes",
    "successes_correct",
    "robust_correct",
    "mean_queries",
    "median_queries",
]
PERSON_COLUMNS = [
    "run_dir",
    "seed",
    "index",
    "k",
    "correct",
    "success",
    "robust",
    "queries",
    "pixels_needed",
    "clean_top1",
]


@dataclass
class Collection:
    """Every run found under ``root``: one row per run (flattened summary + where it came from)."""

    root: Path
    runs: pd.DataFrame
    points: pd.DataFrame = field(default_factory=lambda: pd.DataFrame(columns=POINT_COLUMNS))
    commands: list[str] = field(default_factory=list)  # distinct command lines from the runs' run.json
    unknown: list[str] = field(default_factory=list)  # summary.json files of a kind the report does not know
    not_finite: list[str] = field(default_factory=list)  # runs left out: a figure is NaN or Infinity


def find_summaries(root: Path) -> list[Path]:
    """Every ``summary.json`` under ``root``, skipping hidden folders (``.hydra``, half-built reports)."""
    root = Path(root)
    found = []
    for path in root.rglob("summary.json"):
        if any(part.startswith(".") for part in path.relative_to(root).parts[:-1]):
            continue
        found.append(path)
    return sorted(found)


def read_json_object(path: Path) -> dict[str, Any]:
    """Parse ``path`` as a JSON object; any problem is a :class:`DataFormatError` naming the file."""
    try:
        text = Path(path).read_text()
    except (OSError, UnicodeDecodeError) as exc:
        raise DataFormatError(f"cannot read {path}: {getattr(exc, 'strerror', None) or exc}") from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        where = f"{exc.msg} at line {exc.lineno}, column {exc.colno}"
        raise DataFormatError(f"{path} is not valid JSON ({where})") from None
    if not isinstance(data, dict):
        raise DataFormatError(f"{path} should hold a JSON object, found a {type(data).__name__}")
    return data


def command_line(info: dict[str, Any]) -> str | None:
    """The command a run was started with, from run.json (``command`` if a stage wrote one, else ``argv``)."""
    if isinstance(info.get("command"), str):
        return info["command"]
    argv = info.get("argv")
    if isinstance(argv, list) and argv and all(isinstance(a, str) for a in argv):
        return " ".join([argv[0], *(shlex.quote(a) for a in argv[1:])])  # argv[0] is "emotic-mm <stage>"
    return None


def _run_info(run_dir: Path) -> dict[str, Any]:
    """run.json is provenance, not data: a missing or broken one costs the command line, not the run."""
    path = run_dir / "run.json"
    if not path.is_file():
        return {}
    try:
        return read_json_object(path)
    except DataFormatError as exc:
        log.warning("ignoring %s", exc)
        return {}


def _number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _whole(value: Any) -> bool:
    return _number(value) and float(value).is_integer() and value >= 0


def first_not_finite(value: Any, key: str = "") -> str | None:
    """The dotted key of the first NaN or ±Infinity in a parsed JSON value (Python's json reads them),
    or ``None`` when every number is finite."""
    if isinstance(value, float) and not math.isfinite(value):
        return f"{key}={value}"
    items = value.items() if isinstance(value, dict) else enumerate(value) if isinstance(value, list) else ()
    for k, v in items:
        found = first_not_finite(v, (f"{key}.{k}" if isinstance(k, str) else f"{key}[{k}]").lstrip("."))
        if found is not None:
            return found
    return None


def check_summary(path: Path, summary: dict[str, Any], kind: str) -> None:
    """The keys every aggregate relies on, with their types: a wrong one would silently move a run into
    another group (or out of the report), so it is an error naming the file and the key."""
    spec = ATTACKS.get(kind)
    missing = [k for k in ("model", spec.measure) if k not in summary]
    if missing:
        raise DataFormatError(f"{path} is a {kind!r} summary without key(s) {', '.join(missing)}")

    problems = []
    if not isinstance(summary["model"], str) or not summary["model"]:
        problems.append(f"model={summary['model']!r} (a variant name)")
    for key in (spec.measure, spec.control):
        if key is not None and summary.get(key) is not None and not _number(summary[key]):
            problems.append(f"{key}={summary[key]!r} (a number or null)")
    if summary.get("seed") is not None and (
        not isinstance(summary["seed"], int) or isinstance(summary["seed"], bool)
    ):
        problems.append(f"seed={summary['seed']!r} (a whole number)")
    for key in (*spec.primary, *spec.secondary):
        if isinstance(summary.get(key), (dict, list)):
            problems.append(f"{key}={summary[key]!r} (a plain value)")
    if summary.get(spec.count) is not None and not _whole(summary[spec.count]):
        problems.append(f"{spec.count}={summary[spec.count]!r} (a count)")
    modalities = summary.get("modalities")
    if modalities is not None and not (
        isinstance(modalities, list) and modalities and all(isinstance(m, str) for m in modalities)
    ):
        problems.append(f"modalities={modalities!r} (a list of view names)")
    problems += hooks_of(spec).check(summary)
    if problems:
        raise DataFormatError(f"{path}: wrong type for {'; '.join(problems)}")
    # a rate without the n it is a share of has no interval: every kind's summary records its n
    if spec.count not in summary and not (spec.outcomes and isinstance(summary.get(spec.outcomes), list)):
        raise DataFormatError(f"{path} is a {kind!r} summary without key(s) {spec.count}")


def pixel_budget_problems(summary: dict[str, Any]) -> list[str]:
    """A run over pixel budgets records ``pixels``: one budget, or the list its curve holds."""
    pixels = summary.get("pixels")
    if not (_whole(pixels) or (isinstance(pixels, list) and pixels and all(_whole(k) for k in pixels))):
        return [f"pixels={pixels!r} (a pixel budget or a list of them)"]
    return []


def curve_points(path: Path, summary: dict[str, Any], run_dir: str) -> list[dict[str, Any]]:
    """One row per pixel budget k of a pixel run: the counts behind its rates.

    With a ``curve`` (one entry per k) the counts are read as recorded; a summary without one (an int
    ``pixels`` and the rates at that k) is a one-point curve whose counts are rate × persons."""
    persons = summary["persons"]
    correct = summary.get("persons_correct")
    if correct is not None and not (_whole(correct) and correct <= persons):
        raise DataFormatError(
            f"{path}: wrong type for persons_correct={correct!r} (a count ≤ persons={persons})"
        )
    curve = summary.get("curve")
    if curve is None:
        if isinstance(summary["pixels"], list):
            raise DataFormatError(f"{path}: pixels is a list but the summary has no curve")
        rate, rate_correct = summary.get("success_rate_all"), summary.get("success_rate_correct")
        return [
            {
                "run_dir": run_dir,
                "k": int(summary["pixels"]),
                "persons": persons,
                "persons_correct": correct,
                "successes": None if rate is None else round(rate * persons),
                "successes_correct": None
                if rate_correct is None or correct is None
                else round(rate_correct * correct),
                "robust_correct": None,
                "mean_queries": summary.get("mean_queries_success"),
                "median_queries": summary.get("median_queries_success"),
            }
        ]
    if not isinstance(curve, list) or not curve:
        raise DataFormatError(
            f"{path}: wrong type for curve={curve!r} (a list with one entry per pixel budget)"
        )
    points, seen = [], set()
    for i, entry in enumerate(curve):
        where = f"{path}: curve[{i}]"
        if not isinstance(entry, dict):
            raise DataFormatError(f"{where} is a {type(entry).__name__}, not an object")
        for key in ("pixels", "successes"):
            if key not in entry:
                raise DataFormatError(f"{where} has no key {key}")
        for key, bound in (
            ("pixels", None),
            ("successes", persons),
            ("successes_correct", correct),
            ("robust_correct", persons),
        ):
            value = entry.get(key)
            if value is not None and not (_whole(value) and (bound is None or value <= bound)):
                limit = "" if bound is None else f" ≤ {bound}"
                raise DataFormatError(f"{where}: wrong type for {key}={value!r} (a count{limit})")
        for key in ("mean_queries_success", "median_queries_success"):
            if entry.get(key) is not None and not _number(entry[key]):
                raise DataFormatError(f"{where}: wrong type for {key}={entry[key]!r} (a number or null)")
        if entry["pixels"] in seen:
            raise DataFormatError(f"{where}: pixels={entry['pixels']} appears twice in the curve")
        seen.add(entry["pixels"])
        points.append(
            {
                "run_dir": run_dir,
                "k": int(entry["pixels"]),
                "persons": persons,
                "persons_correct": correct,
                "successes": entry["successes"],
                "successes_correct": entry.get("successes_correct"),
                "robust_correct": entry.get("robust_correct"),
                "mean_queries": entry.get("mean_queries_success"),
                "median_queries": entry.get("median_queries_success"),
            }
        )
    return points


def counts(summary: dict[str, Any], kind: Any) -> dict[str, Any]:
    """The counts behind the run's measure (at a pixel run's largest k) and its control:
    ``report.n``, ``report.successes``, ``report.control_successes`` (NaN where not recorded).

    A run's per-target outcomes list (the kind's ``outcomes`` key, e.g. a collision run's ``target_success``)
    is counted as it is; otherwise successes are the recorded rate times its n (``rate`` was computed as
    successes / n, so rounding recovers the count)."""
    listed = summary.get(kind.outcomes) if kind.outcomes else None
    if isinstance(listed, list) and all(isinstance(v, bool) for v in listed):
        n, successes = len(listed), sum(listed)
    else:
        n = summary.get(kind.count)
        rate = summary.get(kind.measure)
        successes = round(rate * n) if rate is not None and n is not None else math.nan
    control = summary.get(kind.control) if kind.control else None
    return {
        "report.n": math.nan if n is None else n,
        "report.successes": successes,
        "report.control_successes": round(control * n) if control is not None and n is not None else math.nan,
    }


def _record(summary: dict[str, Any]) -> dict[str, Any]:
    """The summary as one flat row: nested objects as ``a.b`` columns, lists as text."""
    flat: dict[str, Any] = {}
    for key, value in (
        pd.json_normalize({k: v for k, v in summary.items() if k != "curve"}, sep=".").iloc[0].items()
    ):
        if key == "modalities" and isinstance(value, list):
            flat[key] = "+".join(value)
        else:
            flat[key] = ";".join(map(str, value)) if isinstance(value, list) else value
    if "curve" in summary:
        flat["curve"] = json.dumps(summary["curve"])
    return flat


def load_runs(root: Path) -> Collection:
    """Read every run under ``root``; raises :class:`DataFormatError` for a summary it cannot use."""
    root = Path(root)
    records: list[dict[str, Any]] = []
    points: list[dict[str, Any]] = []
    commands: list[str] = []
    unknown: list[str] = []
    not_finite: list[str] = []
    for path in find_summaries(root):
        summary = read_json_object(path)
        kind = summary.get("attack")
        if kind is None:
            continue  # another stage's summary.json: not a run of this report
        if kind not in ATTACKS:
            unknown.append(str(path.relative_to(root)))
            log.warning("%s: unknown attack kind %r, left out of the report", path, kind)
            continue
        bad = first_not_finite(summary)
        if bad is not None:  # e.g. rates of an attack on 0 persons: nothing to pool, and no count behind them
            not_finite.append(str(path.parent.relative_to(root).as_posix() or "."))
            log.warning("%s: %s is not a finite number; run left out of the report", path, bad)
            continue
        check_summary(path, summary, kind)
        info = _run_info(path.parent)
        command = command_line(info)
        if command and command not in commands:
            commands.append(command)
        run_dir = path.parent.relative_to(root).as_posix() or "."
        points += hooks_of(ATTACKS.get(kind)).read(path, summary, run_dir)  # a curve's counts, if it has one
        record = _record(summary)
        record["kind"] = kind
        record["model"] = str(summary["model"])
        seed = summary["seed"] if summary.get("seed") is not None else info.get("seed")
        if not isinstance(seed, int) or isinstance(seed, bool):
            raise DataFormatError(
                f"{path}: no seed in summary.json or run.json (the report pools and pairs runs by seed)"
            )
        record["seed"] = seed
        record["run_dir"] = run_dir
        record.update(counts(summary, ATTACKS.get(kind)))
        records.append(record)
    runs = pd.DataFrame.from_records(records)
    if not runs.empty:
        front = ["run_dir", "kind", "model", "seed"]
        runs = runs[front + [c for c in runs.columns if c not in front]]
        for kind in ATTACKS:
            for key in (kind.measure, kind.control, kind.count):
                if key is not None and key in runs:
                    runs[key] = pd.to_numeric(runs[key], errors="coerce")
    table = pd.DataFrame.from_records(points, columns=POINT_COLUMNS)
    for column in POINT_COLUMNS[1:]:
        table[column] = pd.to_numeric(table[column], errors="coerce")
    return Collection(
        root=root, runs=runs, points=table, commands=commands, unknown=unknown, not_finite=not_finite
    )


# --------------------------------------------------------------------------- attack.csv
FLAGS = {"true": 1.0, "false": 0.0, "1": 1.0, "0": 0.0, "1.0": 1.0, "0.0": 0.0}


def _flags(path: Path, frame: pd.DataFrame, column: str) -> np.ndarray:
    """A True/False column (as pandas or a person wrote it) as floats 1/0, NaN where empty."""
    values = frame[column]
    if values.dtype == bool:
        return values.to_numpy(float)
    out = values.astype(str).str.strip().str.lower().map(FLAGS)
    bad = values.notna() & out.isna()
    if bad.any():
        raise DataFormatError(
            f"{path}: column {column} holds {values[bad].iloc[0]!r} (row {int(bad.idxmax()) + 2}); "
            "expected True or False"
        )
    return out.to_numpy(float)


def read_attack_csv(path: Path, ks: list[int], persons: int | None) -> pd.DataFrame:
    """One pixel run's ``attack.csv`` as long rows
    ``(index, k, correct, success, robust, queries, pixels_needed)``.

    Per k the outcome is ``success_k{k}`` (and ``robust_k{k}``); a one-k run may have only
    ``success``. A column the summary's curve needs but the CSV lacks, a wrong value, a repeated person or a
    row count other than the summary's ``persons`` is an error naming the file."""
    try:
        frame = pd.read_csv(path, keep_default_na=True)
    except (OSError, UnicodeDecodeError, pd.errors.ParserError, pd.errors.EmptyDataError) as exc:
        raise DataFormatError(f"cannot read {path}: {exc}") from None
    if "index" not in frame:
        raise DataFormatError(f"{path} has no column index")
    index = pd.to_numeric(frame["index"], errors="coerce")
    if index.isna().any() or not (index == index.round()).all():
        raise DataFormatError(f"{path}: column index must hold whole numbers (person indices)")
    if index.duplicated().any():
        raise DataFormatError(f"{path}: person index {int(index[index.duplicated()].iloc[0])} appears twice")
    if persons is not None and len(frame) != persons:
        raise DataFormatError(f"{path} has {len(frame)} rows but its summary.json says persons={persons}")
    correct = (
        _flags(path, frame, "clean_correct") if "clean_correct" in frame else np.full(len(frame), math.nan)
    )
    queries = (
        pd.to_numeric(frame["queries"], errors="coerce").to_numpy(float)
        if "queries" in frame
        else np.full(len(frame), math.nan)
    )
    needed = (
        pd.to_numeric(frame["pixels_needed"], errors="coerce").to_numpy(float)
        if "pixels_needed" in frame
        else np.full(len(frame), math.nan)
    )
    answers = (
        frame["clean_top1"].astype(str).to_numpy() if "clean_top1" in frame else np.full(len(frame), None)
    )
    parts = []
    for k in ks:
        column = f"success_k{k}" if f"success_k{k}" in frame or len(ks) > 1 else "success"
        if column not in frame:
            raise DataFormatError(
                f"{path} has no column success_k{k} (its summary.json has a curve point at k={k})"
            )
        robust = (
            _flags(path, frame, f"robust_k{k}") if f"robust_k{k}" in frame else np.full(len(frame), math.nan)
        )
        parts.append(
            pd.DataFrame(
                {
                    "index": index.astype(int).to_numpy(),
                    "k": k,
                    "correct": correct,
                    "success": _flags(path, frame, column),
                    "robust": robust,
                    "queries": queries,
                    "pixels_needed": needed,
                    "clean_top1": answers,
                }
            )
        )
    out = pd.concat(parts, ignore_index=True)
    if out["success"].isna().any():
        raise DataFormatError(f"{path}: an empty success value (every attacked person has an outcome)")
    return out


def load_persons(collection: Collection) -> pd.DataFrame:
    """Every ``attack.csv`` of a run with a curve (pixel runs) as one long table (:data:`PERSON_COLUMNS`);
    runs without one are left out of the paired comparisons (logged), their rates still come from their
    summaries."""
    runs, points = collection.runs, collection.points
    parts = []
    if runs.empty or points.empty:
        return pd.DataFrame(columns=PERSON_COLUMNS)
    ks = points.groupby("run_dir")["k"].apply(lambda s: sorted(int(k) for k in s))
    for _, run in runs[runs["run_dir"].isin(set(points["run_dir"]))].iterrows():
        path = collection.root / run["run_dir"] / "attack.csv"
        if not path.is_file():
            log.warning("%s: no attack.csv, so this run is left out of the paired comparisons", path.parent)
            continue
        persons = None if pd.isna(run.get("persons")) else int(run["persons"])
        frame = read_attack_csv(path, ks[run["run_dir"]], persons)
        parts.append(frame.assign(run_dir=run["run_dir"], seed=run["seed"]))
    if not parts:
        return pd.DataFrame(columns=PERSON_COLUMNS)
    return pd.concat(parts, ignore_index=True)[PERSON_COLUMNS]


TRIGGERED_COLUMNS = ["run_dir", "seed", "index", "success"]


def load_triggered(collection: Collection, kind: AttackKind) -> pd.DataFrame:
    """Every ``triggered.csv`` of a run of ``kind`` (backdoor) as long rows (:data:`TRIGGERED_COLUMNS`;
    success = the trigger made the poisoned model's top-1 the target); runs without one are compared by
    their counts only."""
    runs = collection.runs
    parts = []
    for _, run in runs[runs["kind"] == kind.name].iterrows() if not runs.empty else ():
        path = collection.root / run["run_dir"] / "triggered.csv"
        if not path.is_file():
            continue
        try:
            frame = pd.read_csv(path)
        except (OSError, UnicodeDecodeError, pd.errors.ParserError, pd.errors.EmptyDataError) as exc:
            raise DataFormatError(f"cannot read {path}: {exc}") from None
        for column in ("index", "hit_poisoned"):
            if column not in frame:
                raise DataFormatError(f"{path} has no column {column}")
        n = run.get("triggered_persons")
        if not pd.isna(n) and len(frame) != int(n):
            raise DataFormatError(
                f"{path} has {len(frame)} rows but its summary.json says triggered_persons={int(n)}"
            )
        parts.append(
            pd.DataFrame(
                {
                    "run_dir": run["run_dir"],
                    "seed": run["seed"],
                    "index": frame["index"].astype(int),
                    "success": _flags(path, frame, "hit_poisoned"),
                }
            )
        )
    return pd.concat(parts, ignore_index=True) if parts else pd.DataFrame(columns=TRIGGERED_COLUMNS)
