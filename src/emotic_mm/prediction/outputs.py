"""What ``predict`` writes: one record per person (top-k emotions, VAD, every score), ``predictions.json``
and ``predictions.csv``, and the guard that lets it replace only its own earlier files."""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import pandas as pd
import torch

from emotic_mm.data.categories import CATEGORIES
from emotic_mm.data.photos import Photo
from emotic_mm.fsutil import check_replaceable
from emotic_mm.prediction.preprocessing import Preprocessing

VAD_NAMES = ("valence", "arousal", "dominance")
# predictions.csv's leading columns (top-k, VAD and per-category scores follow); also how an earlier
# run's file is recognised
CSV_COLUMNS = ("row", "path", "x1", "y1", "x2", "y2", "text", "text_source", "dominant")


def _json_with(path: Path, keys: tuple[str, ...]) -> bool:
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return False
    return isinstance(data, dict) and all(k in data for k in keys)


def _ours_csv(path: Path) -> bool:
    try:
        with open(path, encoding="utf-8") as f:
            return f.readline().startswith(",".join(CSV_COLUMNS) + ",")
    except (OSError, UnicodeDecodeError):
        return False


# the files predict writes into its run dir, and how an earlier run's copy of each is recognised
OUTPUTS = {
    "predictions.json": lambda p: _json_with(p, ("checkpoint", "predictions", "preprocessing")),
    "predictions.csv": _ours_csv,
    "run.json": lambda p: _json_with(p, ("stage", "argv", "versions")),
    "config.yaml": lambda p: _json_with(p.parent / "run.json", ("stage", "argv", "versions")),
}


def check_outputs(run_dir: Path, overwrite: Any, names: tuple[str, ...] = tuple(OUTPUTS)) -> None:
    """Predict writes only over its own earlier outputs (``overwrite=true`` for anything else), so a
    ``hydra.run.dir`` that names a user's folder never loses a file there."""
    for name in names:
        check_replaceable(
            Path(run_dir) / name,
            key="hydra.run.dir",
            ours=OUTPUTS[name],
            what_ours=f"the {name} of an earlier run",
            overwrite=overwrite,
        )


def predictions(
    checkpoint: Any,
    variant: str,
    prep: Preprocessing,
    photos: list[Photo],
    out: dict[str, torch.Tensor],
    top_k: int,
) -> dict[str, Any]:
    """What ``predictions.json`` holds: the checkpoint, the preprocessing used and one record per person."""
    scores = torch.sigmoid(out["logits"])
    return {
        "checkpoint": str(checkpoint),
        "variant": variant,
        "modalities": prep.modalities,
        "preprocessing": {
            "context_size": prep.context_size,
            "body_size": prep.body_size,
            "tokenizer": prep.tokenizer,
            "max_length": prep.max_length,
            "trained_text_source": prep.text_source,
            "fallback_text_source": prep.fallback_source,
            "without_text": prep.fallback_note,
            "from": prep.origin,
        },
        "predictions": [_record(p, scores[i], out["vad_pred"][i], top_k, prep) for i, p in enumerate(photos)],
    }


def _record(
    p: Photo, scores: torch.Tensor, vad: torch.Tensor, top_k: int, prep: Preprocessing
) -> dict[str, Any]:
    order = scores.argsort(descending=True).tolist()
    return {
        "row": p.row,
        "path": str(p.path) if p.path else None,
        "bbox": list(p.bbox) if p.bbox else None,
        "box": list(p.box) if p.box else None,
        "image_size": list(p.image_size) if p.image_size else None,
        "text": p.text if "text" in prep.modalities else None,
        "text_source": p.text_source
        if "text" in prep.modalities
        else "unused (the checkpoint reads no text)",
        "dominant": CATEGORIES[order[0]],
        "top_k": [{"emotion": CATEGORIES[c], "score": float(scores[c])} for c in order[:top_k]],
        "vad": {name: float(v) for name, v in zip(VAD_NAMES, vad.tolist())},
        "scores": {c: float(s) for c, s in zip(CATEGORIES, scores.tolist())},
        "warning": p.warning,
    }


def predictions_csv(records: list[dict[str, Any]], top_k: int) -> str:
    """``predictions.csv``: a row per person, its top-k in one column, then VAD and every score."""
    rows = []
    for r in records:
        box = r["box"] or [None] * 4
        lead = (r["row"], r["path"], *box, r["text"], r["text_source"], r["dominant"])
        rows.append(
            {
                **dict(zip(CSV_COLUMNS, lead)),
                f"top{top_k}": ";".join(f"{e['emotion']}:{e['score']:.4f}" for e in r["top_k"]),
                "warning": r["warning"] or "",
                **r["vad"],
                **r["scores"],
            }
        )
    buffer = io.StringIO()
    pd.DataFrame(rows).to_csv(buffer, index=False)
    return buffer.getvalue()
