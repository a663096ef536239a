"""The table a person reads after ``predict``: one person's ranked emotions, or a row per person."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from rich.console import Console

from emotic_mm.progress import print_table


def print_predictions(result: dict[str, Any], top_k: int, print_rows: int, run_dir: Path) -> None:
    """One person's ranked emotions and VAD, or the first ``print_rows`` persons; then where text came
    from."""
    records = result["predictions"]
    console = Console()
    if len(records) == 1:
        r = records[0]
        print_table(
            Path(r["path"]).name if r["path"] else "text",
            ["rank", "emotion", "score"],
            [[i + 1, e["emotion"], f"{e['score']:.3f}"] for i, e in enumerate(r["top_k"])],
        )
        console.print(f"dominant emotion: {r['dominant']}")
        console.print("VAD (1-10): " + " · ".join(f"{k} {v:.2f}" for k, v in r["vad"].items()))
    else:
        shown = records[: max(0, print_rows)]
        print_table(
            f"{len(records)} persons" + (f" (first {len(shown)} shown)" if len(shown) < len(records) else ""),
            ["#", "image", "dominant", f"top {top_k}", "V / A / D", "text"],
            [
                [
                    r["row"] + 1,
                    Path(r["path"]).name if r["path"] else "-",
                    r["dominant"],
                    ", ".join(f"{e['emotion']} {e['score']:.2f}" for e in r["top_k"]),
                    "/".join(f"{x:.1f}" for x in r["vad"].values()),
                    r["text_source"],
                ]
                for r in shown
            ],
        )
    p = result["preprocessing"]
    if "text" in result["modalities"]:
        sources = sorted({r["text_source"] for r in records})
        note = ", ".join(sources)
        if any(s != "given" for s in sources):
            note += f" — persons without text are {p['without_text']}"
        console.print(f"descriptions: {note}")
        if len(records) == 1:
            console.print(f"text: {records[0]['text']}")
    warned = sum(1 for r in records if r.get("warning"))
    if warned:
        console.print(
            f"[yellow]{warned} of {len(records)} row(s) have a picture or box too small to show a "
            "person; see their warning field[/yellow]"
        )
    console.print(f"preprocessing from {p['from']}; wrote predictions.json, predictions.csv to {run_dir}")
