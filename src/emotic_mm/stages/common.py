"""Small steps several stages share: open the store, check it fits the model, build datasets."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np
import torch

from emotic_mm.data.loader import EmoticDataset
from emotic_mm.data.store import Store, StoreSplit
from emotic_mm.errors import ConfigError

log = logging.getLogger(__name__)


def has_checkpoint(cfg: Any) -> bool:
    """``checkpoint=`` was given (Hydra's ``???`` and null mean it was not)."""
    return cfg.get("checkpoint") not in (None, "", "???")


def open_store(cfg: Any) -> Store:
    """The store named by ``data.prepared_dir`` (the key every stage reads)."""
    return Store(Path(str(cfg.data.prepared_dir)))


def check_store_fits_model(store: Store, model_cfg: Any) -> None:
    """Token ids in the store must come from the model's text tokenizer."""
    if "text" not in model_cfg.modalities or store.manifest is None:
        return
    stored = store.manifest.get("tokenizer", {}).get("name")
    wanted = str(model_cfg.text_encoder.name)
    if stored is not None and stored != wanted:
        raise ConfigError(
            f"{store.path}: tokenised with {stored!r} but model.text_encoder.name={wanted!r}; "
            f"re-run `emotic-mm prepare tokenizer.name={wanted}`"
        )


def dataset(store: Store, split: str, modalities: Any) -> EmoticDataset:
    return EmoticDataset(store[split], modalities=[str(m) for m in modalities])


def warm_text_features(model: Any, datasets: list[EmoticDataset]) -> None:
    """Compute a frozen text encoder's features for every description up front, in store order."""
    text = getattr(model, "text_encoder", None)
    if text is None or not getattr(text, "frozen", False):
        return
    for ds in datasets:
        if ds.split.token_ids is None or "text" not in ds.modalities:
            continue
        ids = torch.from_numpy(ds.split.token_ids[:].astype("int64"))
        lengths = torch.from_numpy(ds.split.token_lengths[:].astype("int64"))
        mask = (torch.arange(ids.shape[1])[None, :] < lengths[:, None]).long()
        text.warm(ids, mask)


def person_boxes(split: StoreSplit, ids: np.ndarray) -> tuple[torch.Tensor | None, torch.Tensor | None]:
    """Stored boxes and image sizes of ``ids`` (what the scene surface maps through), or ``(None, None)``."""
    if split.boxes is None or split.image_sizes is None:
        return None, None
    return torch.from_numpy(np.asarray(split.boxes[ids])), torch.from_numpy(np.asarray(split.image_sizes[ids]))
