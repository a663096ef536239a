"""The two variants of the study, sharing one input/output contract.

Input: the loader's batch dict (``context``/``body`` raw pixels, ``input_ids``/``attention_mask``).
Output: ``logits`` (B, 26), ``vad`` (B, 3) on the 1-10 scale, ``embeddings`` (one per modality) and
``fused_embedding``; *joint* adds, in the shared space, ``image_embedding`` (when it has an image
stream), ``text_embedding`` (when it reads text), ``zero_shot`` (similarity to the bare category names)
and ``logit_scale`` (the InfoNCE temperature).

* :class:`BaselineModel` — separate embeddings per modality, fused late by an MLP (Part 1).
* :class:`JointModel` — every modality projected into one L2-normalised space; the 26 emotion names
  are embedded there by the text encoder, and categories are scored by similarity (Part 2).

Only the encoders of ``modalities`` are built, so an ablation never pays for an absent modality.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from emotic_mm.data.categories import CATEGORIES, NUM_CATEGORIES, category_prompt
from emotic_mm.models.encoders import ImageEncoder, TextEncoder

IMAGE_MODALITIES = ("context", "body")
MODALITIES = ("context", "body", "text")


class MultiModalBase(nn.Module):
    """Builds the encoders of the requested modalities and runs them on a batch."""

    def __init__(
        self,
        modalities: Sequence[str],
        image_encoders: dict[str, ImageEncoder],
        text_encoder: TextEncoder | None,
    ) -> None:
        super().__init__()
        self.modalities = tuple(m for m in MODALITIES if m in modalities)
        self.image_encoders = nn.ModuleDict(image_encoders)
        self.text_encoder = text_encoder

    def encode(
        self, batch: dict[str, torch.Tensor], only: Sequence[str] | None = None
    ) -> dict[str, torch.Tensor]:
        return encode_batch(self, batch, only)


def encode_batch(
    model: nn.Module, batch: dict[str, torch.Tensor], only: Sequence[str] | None = None
) -> dict[str, torch.Tensor]:
    """Encoder features per modality of ``model`` (its ``image_encoders`` and ``text_encoder``). A batch may
    carry precomputed ``features.<modality>`` (B, D): that encoder is then skipped — the attack engine
    uses this for the views it does not change, certification for the inputs it holds fixed."""
    feats: dict[str, torch.Tensor] = {}
    for m in model.modalities:
        if only is not None and m not in only:
            continue
        if f"features.{m}" in batch:
            feats[m] = batch[f"features.{m}"]
        elif m == "text":
            feats[m] = model.text_encoder(batch["input_ids"], batch["attention_mask"])
        else:
            feats[m] = model.image_encoders[m](batch[m])
    return feats


def _mlp(in_dim: int, out_dim: int, dropout: float) -> nn.Sequential:
    return nn.Sequential(nn.Linear(in_dim, out_dim), nn.LayerNorm(out_dim), nn.GELU(), nn.Dropout(dropout))


class BaselineModel(MultiModalBase):
    """Separate embedding per modality → concatenation → fusion MLP → category and VAD heads."""

    variant = "baseline"

    def __init__(
        self,
        modalities: Sequence[str],
        image_encoders: dict[str, ImageEncoder],
        text_encoder: TextEncoder | None,
        embed_dim: int = 128,
        fusion_dim: int = 256,
        dropout: float = 0.2,
    ) -> None:
        super().__init__(modalities, image_encoders, text_encoder)
        dims = {
            m: (text_encoder.out_dim if m == "text" else image_encoders[m].out_dim) for m in self.modalities
        }
        self.embedders = nn.ModuleDict({m: _mlp(dims[m], embed_dim, dropout) for m in self.modalities})
        self.fusion = _mlp(embed_dim * len(self.modalities), fusion_dim, dropout)
        self.category_head = nn.Linear(fusion_dim, NUM_CATEGORIES)
        self.vad_head = nn.Linear(fusion_dim, 3)
        nn.init.constant_(self.vad_head.bias, 5.5)

    def forward(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor | dict[str, torch.Tensor]]:
        feats = self.encode(batch)
        embeddings = {m: self.embedders[m](feats[m]) for m in self.modalities}
        fused = self.fusion(torch.cat([embeddings[m] for m in self.modalities], dim=1))
        return {
            "logits": self.category_head(fused),
            "vad": self.vad_head(fused),
            "embeddings": embeddings,
            "fused_embedding": fused,
        }

    def image_representation(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        """The part of the fused input that depends on the pictures: the image streams' embeddings,
        concatenated (what feature-collision poisoning aims at)."""
        feats = self.encode(batch, only=IMAGE_MODALITIES)
        return torch.cat([self.embedders[m](feats[m]) for m in self.modalities if m in feats], dim=1)


class JointModel(MultiModalBase):
    """One shared, L2-normalised space for context, body, text and the 26 emotion names."""

    variant = "joint"

    def __init__(
        self,
        modalities: Sequence[str],
        image_encoders: dict[str, ImageEncoder],
        text_encoder: TextEncoder,
        category_tokens: dict[str, torch.Tensor],
        embed_dim: int = 256,
        dropout: float = 0.1,
        temperature: float = 0.07,
        category_offsets: bool = True,
    ) -> None:
        super().__init__(modalities, image_encoders, text_encoder)
        dims = {m: image_encoders[m].out_dim for m in self.modalities if m != "text"}
        self.projections = nn.ModuleDict({m: _projection(d, embed_dim, dropout) for m, d in dims.items()})
        # descriptions and category names share one text projection: they live in the same space
        self.text_projection = _projection(text_encoder.out_dim, embed_dim, dropout)
        self.register_buffer("category_ids", category_tokens["input_ids"], persistent=False)
        self.register_buffer("category_mask", category_tokens["attention_mask"], persistent=False)
        self.logit_scale = nn.Parameter(torch.tensor(math.log(1.0 / temperature)))  # InfoNCE
        self.category_scale = nn.Parameter(torch.tensor(math.log(2.0)))
        self.category_bias = nn.Parameter(torch.zeros(NUM_CATEGORIES))
        # Learnable offsets (zero at start) let the name vectors move apart where the frozen text
        # encoder places two emotions too close; the names still anchor each category in the space.
        self.category_offsets = nn.Parameter(
            torch.zeros(NUM_CATEGORIES, embed_dim), requires_grad=category_offsets
        )
        self.vad_head = nn.Sequential(nn.Linear(embed_dim, embed_dim), nn.GELU(), nn.Linear(embed_dim, 3))
        nn.init.constant_(self.vad_head[-1].bias, 5.5)

    def category_vectors(self) -> tuple[torch.Tensor, torch.Tensor]:
        """(26, D) unit vectors of the emotion names in the shared space: the names alone (zero-shot) and
        with the learned offsets (scoring). One text-encoder pass serves both."""
        names = self.text_projection(self.text_encoder(self.category_ids, self.category_mask))
        return F.normalize(names, dim=-1), F.normalize(names + self.category_offsets, dim=-1)

    def category_embeddings(self, names_only: bool = False) -> torch.Tensor:
        """(26, D) unit vectors of the emotion names (``names_only``: without the learned offsets)."""
        return self.category_vectors()[0 if names_only else 1]

    def forward(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor | dict[str, torch.Tensor]]:
        feats = self.encode(batch)
        embeddings: dict[str, torch.Tensor] = {}
        for m in self.modalities:
            proj = self.text_projection if m == "text" else self.projections[m]
            embeddings[m] = F.normalize(proj(feats[m]), dim=-1)
        out: dict[str, torch.Tensor | dict[str, torch.Tensor]] = {"embeddings": embeddings}
        images = [embeddings[m] for m in IMAGE_MODALITIES if m in embeddings]
        parts = []
        if images:
            out["image_embedding"] = F.normalize(torch.stack(images).sum(0), dim=-1)
            parts.append(out["image_embedding"])
        if "text" in embeddings:
            out["text_embedding"] = embeddings["text"]
            parts.append(embeddings["text"])
        evidence = torch.stack(parts).sum(0)  # sum of unit vectors: each modality adds its similarity
        fused = F.normalize(evidence, dim=-1)
        out["fused_embedding"] = fused
        names, categories = self.category_vectors()
        out["zero_shot"] = fused @ names.t()
        # Scoring with the unnormalised sum keeps each modality's evidence additive: normalising first
        # would let a confident modality dilute the cues only another modality can see.
        similarity = evidence @ categories.t()
        out["logits"] = self.category_scale.exp() * similarity + self.category_bias
        out["vad"] = self.vad_head(fused)
        out["logit_scale"] = self.logit_scale.clamp(max=math.log(100.0)).exp()
        return out

    def image_representation(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        """The image vector of the shared space (``image_embedding`` of :meth:`forward`)."""
        feats = self.encode(batch, only=IMAGE_MODALITIES)
        images = [F.normalize(self.projections[m](feats[m]), dim=-1) for m in IMAGE_MODALITIES if m in feats]
        return F.normalize(torch.stack(images).sum(0), dim=-1)


def _projection(in_dim: int, out_dim: int, dropout: float) -> nn.Sequential:
    return nn.Sequential(
        nn.Linear(in_dim, out_dim), nn.GELU(), nn.Dropout(dropout), nn.Linear(out_dim, out_dim)
    )


def category_token_batch(tokenizer, max_length: int = 48) -> dict[str, torch.Tensor]:
    enc = tokenizer(
        [category_prompt(c) for c in CATEGORIES],
        padding="max_length",
        truncation=True,
        max_length=max_length,
        return_tensors="pt",
    )
    return {"input_ids": enc["input_ids"], "attention_mask": enc["attention_mask"]}
