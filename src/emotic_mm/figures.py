"""The one matplotlib set-up (Agg: no display needed) and every figure a run writes for a person to look at:
pixel-attack examples, backdoor and collision examples, precision-recall curves.

It sits below the recipes, the stages and the report, so that all of them draw through the same
:func:`pyplot` and :func:`save` without a recipe importing the report.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from emotic_mm.fsutil import atomic_file

if TYPE_CHECKING:  # the report draws without importing torch
    import torch

DPI = 80  # a run's own figures
REPORT_DPI = 90  # the report's aggregate plots


def pyplot():
    """``matplotlib.pyplot`` on the Agg backend (the only place the backend is chosen)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def save(fig: Any, path: Path, dpi: int = DPI) -> None:
    """Lay out, write atomically, close."""
    fig.tight_layout()
    with atomic_file(Path(path)) as tmp:
        fig.savefig(tmp, dpi=dpi, format=Path(path).suffix.lstrip(".") or "png")
    pyplot().close(fig)


def grid(rows: int, cols: int, size: tuple[float, float] = (2.4, 2.6)):
    """A figure of ``rows × cols`` picture panels without ticks."""
    plt = pyplot()
    fig, axes = plt.subplots(rows, cols, figsize=(size[0] * cols, size[1] * rows), squeeze=False)
    for ax in axes.flat:
        ax.set_xticks([])
        ax.set_yticks([])
    return fig, axes


def show(ax: Any, image: np.ndarray | torch.Tensor, title: str) -> None:
    """A (3, H, W) picture with its title above it (an x-label would sit under the next row)."""
    image = np.asarray(image.cpu()) if hasattr(image, "cpu") else np.asarray(image)
    ax.imshow(np.transpose(image, (1, 2, 0)).astype(np.uint8))
    ax.set_title(title, fontsize=7)


def pixel_examples(
    path: Path,
    clean: np.ndarray,
    adversarial: np.ndarray,
    pixels: np.ndarray,
    clean_titles: Sequence[str],
    adv_titles: Sequence[str],
    surface: str,
) -> None:
    """Clean vs adversarial pictures (N, 3, H, W), the changed pixels (N, k, 5) circled."""
    if len(clean) == 0:
        return
    fig, axes = grid(2, len(clean), (max(2.6, 4.5 / len(clean)), 2.8))
    plt = pyplot()
    for col in range(len(clean)):
        show(axes[0][col], clean[col], f"clean: {clean_titles[col]}")
        show(axes[1][col], adversarial[col], f"adv: {adv_titles[col]}")
        radius = max(3, adversarial[col].shape[-1] // 25)
        for x, y, *_ in np.asarray(pixels[col]).tolist():
            axes[1][col].add_patch(plt.Circle((x, y), radius=radius, fill=False, color="red", lw=1.5))
    fig.suptitle(f"few-pixel attack on the {surface} view\n(top: clean, bottom: adversarial)", fontsize=9)
    save(fig, path)


def backdoor_examples(
    path: Path,
    clean: torch.Tensor,
    triggered: torch.Tensor,
    clean_titles: Sequence[str],
    trigger_titles: Sequence[str],
    view: str,
) -> None:
    """Clean vs triggered test persons, with the poisoned model's top-1 under each."""
    if len(clean) == 0:
        return
    fig, axes = grid(2, len(clean))
    for j in range(len(clean)):
        show(axes[0][j], clean[j], f"clean: {clean_titles[j]}")
        show(axes[1][j], triggered[j], f"trigger: {trigger_titles[j]}")
    fig.suptitle(f"backdoor trigger on the {view} view (poisoned model's top-1)", fontsize=9)
    save(fig, path)


def collision_examples(
    path: Path, bases: torch.Tensor, poisons: torch.Tensor, targets: torch.Tensor, view: str
) -> None:
    """Base, poison (looks like the base) and the target it collides with, one column per poison."""
    if len(bases) == 0:
        return
    fig, axes = grid(3, len(bases))
    for j in range(len(bases)):
        change = int((poisons[j].int() - bases[j].int()).abs().max())
        show(axes[0][j], bases[j], "base")
        show(axes[1][j], poisons[j], f"poison (max Δ {change})")
        show(axes[2][j], targets[j], "target")
    fig.suptitle(f"feature-collision poisons ({view} view)", fontsize=9)
    save(fig, path)


def pr_curves(
    path: Path, scores: torch.Tensor, labels: torch.Tensor, per_category_ap: dict[str, Any], title: str
) -> None:
    """Precision-recall curve of each of the 26 categories, its AP in the panel title."""
    from torchmetrics.functional.classification import multilabel_precision_recall_curve

    from emotic_mm.data.categories import CATEGORIES

    plt = pyplot()
    precision, recall, _ = multilabel_precision_recall_curve(
        scores, labels.long(), num_labels=labels.shape[1]
    )
    fig, axes = plt.subplots(4, 7, figsize=(21, 12), sharex=True, sharey=True)
    for c, ax in enumerate(axes.flat):
        if c >= len(CATEGORIES):
            ax.axis("off")
            continue
        ax.plot(recall[c].numpy(), precision[c].numpy(), lw=1.2)
        ap = per_category_ap[CATEGORIES[c]]
        ax.set_title(
            f"{CATEGORIES[c]} AP={ap:.2f}" if ap is not None else f"{CATEGORIES[c]} (no positives)",
            fontsize=9,
        )
        ax.set_xlim(0, 1)
        ax.set_ylim(0, 1.02)
    fig.suptitle(title)
    fig.supxlabel("recall")
    fig.supylabel("precision")
    save(fig, path)
