"""Losses as small modules, kept apart from the models.

* :class:`DynamicWeightedLoss` — the EMOTIC literature's discrete loss (Kosti et al.): squared error
  between outputs and multi-hot targets, each category weighted by 1 / ln(c + 1.2) where c is its
  number of positives in the batch (1e-4 when absent). Summed over categories, averaged over the batch.
* BCE-with-logits as the option (``loss.discrete=bce``).
* :class:`VADLoss` — smooth-L1 on the 1-10 scale.
* :class:`SymmetricInfoNCE` — image↔text alignment with a learnable temperature (CLIP-style).

Under torchrun both batch-dependent losses see the global batch: the weights come from positive counts
summed over ranks, and InfoNCE gathers every rank's embeddings — so N processes train the objective one
process trains with the same global batch.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from emotic_mm.errors import ConfigError
from emotic_mm.training.distributed import gather_with_grad, sum_across_ranks


class DynamicWeightedLoss(nn.Module):
    def __init__(self, absent_weight: float = 1e-4) -> None:
        super().__init__()
        self.absent_weight = absent_weight

    @staticmethod
    def weights(target: torch.Tensor, absent_weight: float = 1e-4) -> torch.Tensor:
        """1 / ln(c + 1.2) from the positives c of the *global* batch (summed over torchrun ranks)."""
        counts = sum_across_ranks(target.sum(0))
        w = torch.full_like(counts, absent_weight)
        present = counts > 0
        w[present] = 1.0 / torch.log(counts[present] + 1.2)
        return w

    def forward(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        w = self.weights(target.float(), self.absent_weight)
        return (((logits.float() - target.float()) ** 2) * w).sum() / logits.shape[0]


class BCELoss(nn.Module):
    def forward(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return F.binary_cross_entropy_with_logits(logits.float(), target.float())


class VADLoss(nn.Module):
    def __init__(self, beta: float = 1.0) -> None:
        super().__init__()
        self.beta = beta

    def forward(self, pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return F.smooth_l1_loss(pred.float(), target.float(), beta=self.beta)


class SymmetricInfoNCE(nn.Module):
    """Mean of image→text and text→image cross-entropy over the global batch's similarity matrix (under
    torchrun every rank's embeddings are gathered, with gradients, so each sees all negatives).

    ``anchor="text"`` stops the gradient at the text side: the description's embedding is shaped by the
    emotion objective alone and the image embedding is pulled towards it (one-sided alignment). Two-sided
    alignment also bends the text embedding towards what pictures show (clothes, hair), which costs the
    categories only the description carries."""

    def __init__(self, anchor: str | None = None) -> None:
        super().__init__()
        if anchor not in (None, "text", "image"):
            raise ConfigError(f"loss.contrastive_anchor={anchor!r} is not one of null, text, image")
        self.anchor = anchor

    def forward(self, image: torch.Tensor, text: torch.Tensor, logit_scale: torch.Tensor) -> torch.Tensor:
        if self.anchor == "text":
            text = text.detach()
        elif self.anchor == "image":
            image = image.detach()
        image, text = gather_with_grad(image), gather_with_grad(text)
        logits = logit_scale * image.float() @ text.float().t()
        labels = torch.arange(logits.shape[0], device=logits.device)
        return 0.5 * (F.cross_entropy(logits, labels) + F.cross_entropy(logits.t(), labels))


class EmotionObjective(nn.Module):
    """The weighted sum the trainer minimises; returns the total and its parts for logging."""

    def __init__(
        self,
        discrete: str = "dynamic",
        cat_weight: float = 1.0,
        vad_weight: float = 0.5,
        contrastive_weight: float = 0.5,
        contrastive_anchor: str | None = None,
    ) -> None:
        super().__init__()
        if discrete not in ("dynamic", "bce"):
            raise ConfigError(f"loss.discrete={discrete!r} is not one of dynamic, bce")
        self.discrete = DynamicWeightedLoss() if discrete == "dynamic" else BCELoss()
        self.vad = VADLoss()
        self.contrastive = SymmetricInfoNCE(contrastive_anchor)
        self.cat_weight, self.vad_weight, self.contrastive_weight = cat_weight, vad_weight, contrastive_weight

    def forward(
        self, out: dict[str, Any], batch: dict[str, torch.Tensor]
    ) -> tuple[torch.Tensor, dict[str, float]]:
        parts = {
            "cat": self.discrete(out["logits"], batch["categories"]),
            "vad": self.vad(out["vad"], batch["vad"]),
        }
        total = self.cat_weight * parts["cat"] + self.vad_weight * parts["vad"]
        if self.contrastive_weight > 0 and "image_embedding" in out and "text_embedding" in out:
            parts["nce"] = self.contrastive(out["image_embedding"], out["text_embedding"], out["logit_scale"])
            total = total + self.contrastive_weight * parts["nce"]
        return total, {k: float(v.detach()) for k, v in parts.items()}


def build_objective(cfg: Any) -> nn.Module:
    """The ``loss`` block's ``_target_`` (default :class:`EmotionObjective`)."""
    from emotic_mm.config import instantiate_config

    return instantiate_config(cfg, "loss")
