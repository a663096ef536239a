"""Print one comparison table from eval run dirs (each holding the ``metrics.json`` eval wrote).

python scripts/compare.py outputs/demo/eval-baseline outputs/demo/eval-joint [--markdown]
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from rich.console import Console
from rich.table import Table

COLUMNS = [
    ("model", None),
    ("modalities", None),
    ("test mAP", "map"),
    ("mAP (VOC)", "map_voc"),
    ("dominant acc", "dominant_acc"),
    ("top-1 hit", "top1_hit"),
    ("F1", "f1"),
    ("VAD MAE", "vad_mae"),
]


def load(run_dirs: list[Path]) -> list[dict]:
    rows = []
    for d in run_dirs:
        path = d / "metrics.json" if d.is_dir() else d
        if not path.is_file():
            raise SystemExit(f"{path}: no metrics.json (run `emotic-mm eval` first)")
        rows.append(json.loads(path.read_text()))
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("runs", nargs="+", type=Path)
    parser.add_argument("--markdown", action="store_true", help="print a Markdown table (for the README)")
    args = parser.parse_args()
    rows = load(args.runs)
    cells = [
        [
            m["variant"],
            "+".join(m["modalities"]),
            *(f"{m[k]:.4f}" if k != "vad_mae" else f"{m[k]:.3f}" for _, k in COLUMNS[2:]),
        ]
        for m in rows
    ]
    if args.markdown:
        print("| " + " | ".join(c for c, _ in COLUMNS) + " |")
        print("|" + "---|" * len(COLUMNS))
        for r in cells:
            print("| " + " | ".join(r) + " |")
        return
    table = Table(title=f"{rows[0]['split']} split · {rows[0]['persons']} persons")
    for c, _ in COLUMNS:
        table.add_column(c, justify="left" if c in ("model", "modalities") else "right")
    for r in cells:
        table.add_row(*r)
    console = Console()
    if not console.is_terminal:  # piped (make demo in CI, logs): do not squeeze the table to 80 columns
        console = Console(width=150)
    console.print(table)


if __name__ == "__main__":
    main()
