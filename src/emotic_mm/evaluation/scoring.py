"""A split's model outputs in store order. Under ``torchrun`` each rank scores one exact, unpadded block
of persons and the outputs are gathered on rank 0, so every rank's figures are one process's."""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from emotic_mm.data.access import dataset
from emotic_mm.data.store import Store
from emotic_mm.errors import ConfigError
from emotic_mm.models.warming import warm_image_features, warm_text_features
from emotic_mm.training.distributed import DistInfo, gather_to_main
from emotic_mm.training.inference import collect_outputs
from emotic_mm.training.runtime import make_loader


def split_outputs(
    model: nn.Module,
    store: Store,
    split: str,
    modalities: list[str],
    device: torch.device,
    dist: DistInfo,
    batch_size: int,
    workers: int,
    precision: str,
    cache_dir: Path | None = None,
) -> tuple[dict[str, torch.Tensor] | None, list[int]]:
    """This split's outputs in store order on rank 0 (``None`` on the other ranks), and how many persons
    each rank scored. With ``cache_dir`` (one process) a fixed image encoder reads the split's features
    kept there by an earlier run and keeps the ones it computes, as training does."""
    data = dataset(store, split, modalities)
    if len(data) == 0:
        raise ConfigError(
            f"{store.path}: the {split} split has no persons to evaluate "
            "(see the store's manifest.json for why persons were skipped)"
        )
    warm_text_features(model, [data])  # whole split, fixed batching: same features on every rank
    # under torchrun a rank scores one block: warming the whole split would repeat the backbone's work
    if cache_dir is not None and dist.world_size == 1:
        warm_image_features(model, [(data, False)], cache_dir=cache_dir)
    loader = make_loader(data, batch_size, workers, device, False, 0, dist, exact=True)
    parts = gather_to_main(collect_outputs(model, loader, device, precision), dist)
    if parts is None:
        return None, []
    per_rank = [len(p["index"]) if p else 0 for p in parts]
    parts = [p for p in parts if p]  # a rank with an empty block has no outputs
    return {k: torch.cat([p[k] for p in parts]) for k in parts[0]}, per_rank
