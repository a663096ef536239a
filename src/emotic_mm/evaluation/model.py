"""The model ``eval`` scores: a checkpoint's, or one that scores without training (zero-shot prompts)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from omegaconf import DictConfig

from emotic_mm.data.access import has_checkpoint
from emotic_mm.errors import ConfigError
from emotic_mm.fixed_keys import warn_fixed
from emotic_mm.models.factory import build_model
from emotic_mm.models.loading import load_model


def load_or_build(
    cfg: DictConfig, device: torch.device
) -> tuple[torch.nn.Module, DictConfig, dict[str, Any], Path | None]:
    """The checkpoint's model, or (``checkpoint=null`` with a ``model``) one that scores without training:
    a pretrained vision–language model's zero-shot prompts (``model=clip``)."""
    if has_checkpoint(cfg):
        checkpoint = Path(str(cfg.checkpoint))
        model, model_cfg, meta = load_model(checkpoint, device)
        if cfg.get("model") is not None:  # eval's model group is chosen only by the user (model=...)
            warn_fixed(cfg, model_cfg, checkpoint, "model", always=True)
        return model, model_cfg, meta, checkpoint
    model = build_model(cfg.model, cfg.get("defense"))
    if not getattr(model, "zero_shot", False):
        raise ConfigError(
            f"model={cfg.model.name} needs training before it can score: pass checkpoint=<run>/best "
            "(zero-shot evaluation is for model=clip)"
        )
    return model.to(device), cfg, {"zero_shot": True}, None
