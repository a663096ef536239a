"""Config → model: the one place that turns ``cfg.model`` into a module."""

from __future__ import annotations

from typing import Any

from torch import nn

from emotic_mm.errors import ConfigError
from emotic_mm.models.encoders import ImageEncoder, TextEncoder
from emotic_mm.models.multimodal import (IMAGE_MODALITIES, MODALITIES, BaselineModel, JointModel,
                                         category_token_batch)

VARIANTS = ("baseline", "joint")


def check_model_config(cfg: Any) -> list[str]:
    modalities = [str(m) for m in cfg.modalities]
    unknown = [m for m in modalities if m not in MODALITIES]
    if unknown or not modalities:
        raise ConfigError(f"model.modalities={modalities}: choose a non-empty subset of {', '.join(MODALITIES)}")
    if str(cfg.name) not in VARIANTS:
        raise ConfigError(f"model.name={cfg.name!r} is not one of {', '.join(VARIANTS)}")
    return modalities


def build_model(cfg: Any) -> nn.Module:
    """Build the variant named by ``cfg.name`` with encoders for ``cfg.modalities`` only."""
    modalities = check_model_config(cfg)
    img = cfg.image_encoder
    sizes = img.get("input_size") or {}
    image_encoders = {
        m: ImageEncoder(name=str(img.name), weights=img.get("weights"), input_size=sizes.get(m),
                        freeze=bool(img.get("freeze", False)), channels_last=bool(img.get("channels_last", False)),
                        kwargs=dict(img.get("kwargs") or {}))
        for m in IMAGE_MODALITIES if m in modalities
    }
    needs_text = "text" in modalities or cfg.name == "joint"  # joint embeds the category names
    text_encoder = None
    if needs_text:
        text_encoder = TextEncoder(str(cfg.text_encoder.name), freeze=bool(cfg.text_encoder.get("freeze", True)))
    if cfg.name == "baseline":
        return BaselineModel(modalities, image_encoders, text_encoder, embed_dim=int(cfg.embed_dim),
                             fusion_dim=int(cfg.fusion_dim), dropout=float(cfg.dropout))
    from emotic_mm.data.tokens import load_tokenizer

    tokens = category_token_batch(load_tokenizer(str(cfg.text_encoder.name)))
    return JointModel(modalities, image_encoders, text_encoder, tokens, embed_dim=int(cfg.embed_dim),
                      dropout=float(cfg.dropout), temperature=float(cfg.temperature),
                      category_offsets=bool(cfg.get("category_offsets", True)))
