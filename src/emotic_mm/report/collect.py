"""Find the attack and poisoning run dirs under a folder and read them into one pandas table.

A run dir is any folder holding a ``summary.json`` whose ``"attack"`` key names a known kind; it may sit at
any depth (a multirun folder, a folder of single runs, a folder of sweeps). Only the keys each kind's
summary is documented to have are relied on; absent optional keys become NaN, so older or partial runs
still aggregate. A summary that cannot be read is a user-facing error naming the file, because silently
dropping a run would bias every mean in the report.
"""

from __future__ import annotations

import json
import logging
import shlex
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from emotic_mm.attacks.registry import ATTACKS
from emotic_mm.errors import DataFormatError

log = logging.getLogger(__name__)


@dataclass
class Collection:
    """Every run found under ``root``: one row per run (flattened summary + where it came from)."""

    root: Path
    runs: pd.DataFrame
    commands: list[str] = field(default_factory=list)  # distinct command lines from the runs' run.json
    unknown: list[str] = field(default_factory=list)   # summary.json files of a kind the report does not know


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


def _flat(value: Any) -> Any:
    return ";".join(map(str, value)) if isinstance(value, list) else value


def check_summary(path: Path, summary: dict[str, Any], kind: str) -> None:
    """The keys every aggregate relies on, with their types: a wrong one would silently move a run into
    another group (or out of the report), so it is an error naming the file and the key."""
    spec = ATTACKS.get(kind)
    missing = [k for k in ("model", spec.measure) if k not in summary]
    if missing:
        raise DataFormatError(f"{path} is a {kind!r} summary without key(s) {', '.join(missing)}")

    def number(value: Any) -> bool:
        return isinstance(value, (int, float)) and not isinstance(value, bool)

    problems = []
    if not isinstance(summary["model"], str) or not summary["model"]:
        problems.append(f"model={summary['model']!r} (a variant name)")
    for key in (spec.measure, spec.control):
        if key is not None and summary.get(key) is not None and not number(summary[key]):
            problems.append(f"{key}={summary[key]!r} (a number or null)")
    if summary.get("seed") is not None and (not isinstance(summary["seed"], int) or isinstance(summary["seed"], bool)):
        problems.append(f"seed={summary['seed']!r} (a whole number)")
    for key in (*spec.primary, *spec.secondary):
        if isinstance(summary.get(key), (dict, list)):
            problems.append(f"{key}={summary[key]!r} (a plain value)")
    if problems:
        raise DataFormatError(f"{path}: wrong type for {'; '.join(problems)}")


def load_runs(root: Path) -> Collection:
    """Read every run under ``root``; raises :class:`DataFormatError` for a summary it cannot use."""
    root = Path(root)
    records: list[dict[str, Any]] = []
    commands: list[str] = []
    unknown: list[str] = []
    for path in find_summaries(root):
        summary = read_json_object(path)
        kind = summary.get("attack")
        if kind is None:
            continue  # another stage's summary.json: not a run of this report
        if kind not in ATTACKS:
            unknown.append(str(path.relative_to(root)))
            log.warning("%s: unknown attack kind %r, left out of the report", path, kind)
            continue
        check_summary(path, summary, kind)
        info = _run_info(path.parent)
        command = command_line(info)
        if command and command not in commands:
            commands.append(command)
        record = {k: _flat(v) for k, v in pd.json_normalize(summary, sep=".").iloc[0].items()}
        record["kind"] = kind
        record["model"] = str(summary["model"])
        if record.get("seed") is None:
            record["seed"] = info.get("seed")
        record["run_dir"] = path.parent.relative_to(root).as_posix() or "."
        records.append(record)
    runs = pd.DataFrame.from_records(records)
    if not runs.empty:
        front = ["run_dir", "kind", "model", "seed"]
        runs = runs[front + [c for c in runs.columns if c not in front]]
        for kind in ATTACKS:
            for key in (kind.measure, kind.control):
                if key is not None and key in runs:
                    runs[key] = pd.to_numeric(runs[key], errors="coerce")
    return Collection(root=root, runs=runs, commands=commands, unknown=unknown)
