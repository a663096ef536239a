"""The table a person reads after ``eval``."""

from __future__ import annotations

from typing import Any

from emotic_mm.progress import print_table


def print_metrics(m: dict[str, Any]) -> None:
    """The metrics table: mAP, accuracy, F1, VAD error, and retrieval or zero-shot figures where present."""
    rows = [
        ["mAP", f"{m['map']:.4f}"],
        ["mAP (VOC interpolated)", f"{m['map_voc']:.4f}"],
        ["dominant-emotion accuracy", f"{m['dominant_acc']:.4f}"],
        ["top-1 hit rate", f"{m['top1_hit']:.4f}"],
        ["F1 (val thresholds)", f"{m['f1']:.4f}"],
        [
            "VAD MAE (V/A/D)" + (" — untrained head" if m.get("zero_shot") else ""),
            f"{m['vad_mae']:.3f} ({m['valence_mae']:.2f}/{m['arousal_mae']:.2f}/{m['dominance_mae']:.2f})",
        ],
    ]
    if "retrieval" in m:
        r = m["retrieval"]
        rows.append(["image→text R@1/5/10", f"{r['i2t_r@1']:.3f}/{r['i2t_r@5']:.3f}/{r['i2t_r@10']:.3f}"])
        rows.append(["text→image R@1/5/10", f"{r['t2i_r@1']:.3f}/{r['t2i_r@5']:.3f}/{r['t2i_r@10']:.3f}"])
    if "zero_shot_map" in m:
        rows.append(["zero-shot mAP (name similarity)", f"{m['zero_shot_map']:.4f}"])
    print_table(
        f"{m['variant']} {'+'.join(m['modalities'])} · {m['split']} ({m['persons']} persons)",
        ["metric", "value"],
        rows,
    )
