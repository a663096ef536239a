"""A checkpoint folder → the model it was trained as, with its weights loaded.

The folder's format (weights, config, meta) is :mod:`emotic_mm.checkpoint`'s; the model is built from
its config by :func:`emotic_mm.models.factory.build_model`, as in training.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from omegaconf import DictConfig
from omegaconf.errors import OmegaConfBaseException
from torch import nn

from emotic_mm.checkpoint import CONFIG_FILE, checkpoint_dir, load_config, load_weights
from emotic_mm.errors import DataFormatError, EmoticMMError
from emotic_mm.models.factory import build_model


def load_model(
    path: Path, map_location: str | torch.device = "cpu"
) -> tuple[nn.Module, DictConfig, dict[str, Any]]:
    """Rebuild the model a checkpoint was trained as and load its weights."""
    cfg = load_config(path)
    try:
        model = build_model(cfg.model, cfg.get("defense"))
    except (EmoticMMError, OmegaConfBaseException, KeyError, TypeError, ValueError) as exc:
        raise DataFormatError(
            f"{checkpoint_dir(path) / CONFIG_FILE}: cannot build the model it describes "
            f"({type(exc).__name__}: {exc})".replace("\n", " ")
        ) from None
    meta = load_weights(model, path)
    return model.to(map_location), cfg, meta
