"""Metrics on logits and labels only (no model here), with the conventions of the EMOTIC literature.

* ``map`` — mean over categories of average precision (torchmetrics; equals sklearn's
  ``average_precision_score(average="macro")``), over the categories that have a positive;
* ``map_voc`` — the VOC-style interpolated AP of the official MATLAB ``demoComputeAP``;
* VAD mean absolute error per dimension on the 1-10 scale;
* dominant-emotion accuracy — top-1 category vs the annotators' majority vote (ties: any tied
  category counts) — and top-1 hit rate (top-1 in the label set);
* how varied the top-1 answers are: the number of distinct top-1 categories, the share of persons given
  the most common one, and the median top-1 margin (top-1 minus top-2 score): a model that gives
  almost everybody the same answer, or near ties, says little about the pictures, and an attack on it
  means as little;
* F1 with per-category thresholds chosen on val where precision = recall, applied to test;
* image↔text retrieval recall@k for the joint model.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torchmetrics.functional.classification import multilabel_average_precision

from emotic_mm.data.categories import CATEGORIES, VAD_NAMES


def per_category_ap(scores: torch.Tensor, labels: torch.Tensor) -> np.ndarray:
    """AP per category (NaN where a category has no positive)."""
    ap = multilabel_average_precision(
        scores.float(), labels.long(), num_labels=labels.shape[1], average="none"
    )
    ap = ap.cpu().numpy().astype(np.float64)
    ap[labels.sum(0).cpu().numpy() == 0] = np.nan
    return ap


def voc_ap(scores: np.ndarray, labels: np.ndarray) -> float:
    """Interpolated AP of one category as the official MATLAB ``demoComputeAP``/``VOCap`` computes it."""
    order = np.argsort(-scores, kind="stable")
    gt = labels[order] > 0
    if gt.sum() == 0:
        return float("nan")
    tp = np.cumsum(gt)
    fp = np.cumsum(~gt)
    rec = tp / gt.sum()
    prec = tp / (tp + fp)
    mrec = np.concatenate([[0.0], rec, [1.0]])
    mpre = np.concatenate([[0.0], prec, [0.0]])
    for i in range(len(mpre) - 2, -1, -1):
        mpre[i] = max(mpre[i], mpre[i + 1])
    idx = np.nonzero(mrec[1:] != mrec[:-1])[0] + 1
    return float(np.sum((mrec[idx] - mrec[idx - 1]) * mpre[idx]))


def dominant_accuracy(scores: torch.Tensor, votes: torch.Tensor) -> float:
    """Share of persons whose top-1 category is (one of) the annotators' most voted."""
    top1 = scores.argmax(1)
    best = votes.max(1, keepdim=True).values
    dominant = (votes == best) & (best > 0)
    return float(dominant.gather(1, top1[:, None]).float().mean())


def top1_hit_rate(scores: torch.Tensor, labels: torch.Tensor) -> float:
    return float(labels.gather(1, scores.argmax(1)[:, None]).float().mean())


def top1_margins(scores: torch.Tensor) -> torch.Tensor:
    """Per person, the top-1 score minus the second: how far the answer is from a tie."""
    top2 = scores.float().topk(min(2, scores.shape[1]), dim=1).values
    return top2[:, 0] - top2[:, -1]


def answer_spread(scores: torch.Tensor) -> dict[str, float]:
    """Distinct top-1 categories, the most common one's share of persons, and the median top-1 margin."""
    counts = torch.bincount(scores.argmax(1), minlength=scores.shape[1])
    margin = top1_margins(scores)
    return {
        "top1_distinct": int((counts > 0).sum()),
        "top1_majority_share": float(counts.max() / max(scores.shape[0], 1)),
        "top1_margin_median": float(margin.median()) if margin.numel() else float("nan"),
    }


def equal_error_thresholds(scores: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """Per category, the score threshold where precision and recall are closest (chosen on val)."""
    thresholds = np.full(scores.shape[1], 0.5)
    for c in range(scores.shape[1]):
        s, y = scores[:, c], labels[:, c] > 0
        if y.sum() == 0:
            thresholds[c] = np.inf
            continue
        order = np.argsort(-s, kind="stable")
        tp = np.cumsum(y[order])
        k = np.arange(1, len(s) + 1)
        precision, recall = tp / k, tp / y.sum()
        i = int(np.argmin(np.abs(precision - recall)))
        thresholds[c] = s[order][i]
    return thresholds


def f1_at(scores: np.ndarray, labels: np.ndarray, thresholds: np.ndarray) -> np.ndarray:
    pred = scores >= thresholds[None, :]
    y = labels > 0
    tp = (pred & y).sum(0)
    denom = pred.sum(0) + y.sum(0)
    f1 = np.where(denom > 0, 2 * tp / np.maximum(denom, 1), np.nan)
    f1[y.sum(0) == 0] = np.nan
    return f1


def retrieval_recall(
    image: torch.Tensor, text: torch.Tensor, ks: tuple[int, ...] = (1, 5, 10)
) -> dict[str, float]:
    """Recall@k of the matching text for each image and of the matching image for each text."""
    sim = image.float() @ text.float().t()
    target = torch.arange(sim.shape[0], device=sim.device)
    out = {}
    for name, s in (("i2t", sim), ("t2i", sim.t())):
        rank = (s > s.gather(1, target[:, None])).sum(1)  # number of candidates strictly better
        for k in ks:
            out[f"{name}_r@{k}"] = float((rank < k).float().mean())
    return out


def emotion_metrics(
    scores: torch.Tensor,
    labels: torch.Tensor,
    vad_pred: torch.Tensor,
    vad_true: torch.Tensor,
    votes: torch.Tensor | None = None,
) -> dict[str, Any]:
    """The summary figures of one split; ``scores`` are logits or probabilities (ranking only)."""
    ap = per_category_ap(scores, labels)
    s_np, y_np = scores.float().cpu().numpy(), labels.cpu().numpy()
    voc = np.array([voc_ap(s_np[:, c], y_np[:, c]) for c in range(y_np.shape[1])])
    mae = (vad_pred.float() - vad_true.float()).abs().mean(0).cpu().numpy()
    votes = votes if votes is not None else labels
    return {
        "map": float(np.nanmean(ap)),
        "map_voc": float(np.nanmean(voc)),
        "categories_with_positives": int(np.isfinite(ap).sum()),
        "dominant_acc": dominant_accuracy(scores, votes),
        "top1_hit": top1_hit_rate(scores, labels),
        **answer_spread(scores),
        "vad_mae": float(mae.mean()),
        **{f"{n}_mae": float(v) for n, v in zip(VAD_NAMES, mae)},
        "per_category_ap": {c: (None if np.isnan(a) else float(a)) for c, a in zip(CATEGORIES, ap)},
        "per_category_ap_voc": {c: (None if np.isnan(a) else float(a)) for c, a in zip(CATEGORIES, voc)},
        # each category's share of positive persons: its AP's chance level, beside the AP
        "per_category_prevalence": {c: float(p) for c, p in zip(CATEGORIES, (y_np > 0).mean(axis=0))},
    }
