"""Where a stage runs: the device, the torchrun process group, seeding, and loaders that shard by rank.

Every stage that touches a model enters :func:`runtime` once at the top (as nanoGPT sets up DDP once)
and reads ``rt.device`` / ``rt.dist`` below; nothing else derives the rank, the ``cuda:<local rank>``
device or the single-process guard again.
"""

from __future__ import annotations

import os
import random
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, DistributedSampler

from emotic_mm.data.loader import collate_batch
from emotic_mm.errors import ConfigError
from emotic_mm.training.distributed import DistInfo, ShardSampler, cleanup, setup_distributed


@dataclass
class Runtime:
    """This process's device (``cuda:<local rank>`` under torchrun on GPUs) and its rank information."""

    device: torch.device
    dist: DistInfo


def select_device(name: str) -> torch.device:
    """``auto`` picks cuda > mps > cpu."""
    if name != "auto":
        try:
            return torch.device(name)
        except RuntimeError:
            raise ConfigError(
                f"device={name!r} is not a torch device (auto, cpu, cuda, cuda:1, mps)"
            ) from None
    if torch.cuda.is_available():
        return torch.device("cuda")
    if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")


def under_torchrun() -> bool:
    return int(os.environ.get("WORLD_SIZE", "1")) > 1


@contextmanager
def runtime(device: str, single_process: str | None = None, threads: int | None = None) -> Iterator[Runtime]:
    """Select the device, join torchrun's process group (if any) and leave it on the way out.

    ``single_process``: a reason this stage cannot be sharded; under torchrun it is the one-line error.
    A process group that already exists (a caller's) is left to its owner.
    """
    if single_process and under_torchrun():
        raise ConfigError(f"{single_process}; start it without torchrun")
    if threads:  # fewer intra-op threads helps when other jobs share the CPU
        torch.set_num_threads(int(threads))
    chosen = select_device(str(device))
    owns_group = not (torch.distributed.is_available() and torch.distributed.is_initialized())
    dist = setup_distributed(chosen.type)
    if dist.enabled and chosen.type == "cuda":
        chosen = torch.device("cuda", dist.local_rank)
    try:
        yield Runtime(chosen, dist)
    finally:
        if owns_group:  # also when a rank fails, so the others are not left waiting
            cleanup(dist)


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def make_loader(
    dataset: Dataset,
    batch_size: int,
    workers: int,
    device: torch.device,
    shuffle: bool,
    seed: int,
    dist: DistInfo,
    drop_last: bool = False,
    exact: bool = False,
) -> DataLoader:
    """A DataLoader whose sampler also splits the data across ranks; ``set_epoch`` reshuffles.

    ``exact=True`` (evaluation): each rank reads one contiguous, unpadded block in order, so every
    person is scored exactly once and the gathered outputs are in dataset order.
    """
    if exact:
        sampler = ShardSampler(len(dataset), dist.rank, dist.world_size) if dist.enabled else None
    else:
        sampler = (
            DistributedSampler(
                dataset,
                num_replicas=dist.world_size,
                rank=dist.rank,
                shuffle=shuffle,
                seed=seed,
                drop_last=False,
            )
            if (shuffle or dist.enabled)
            else None
        )
    return DataLoader(
        dataset,
        batch_size=batch_size,
        sampler=sampler,
        num_workers=workers,
        pin_memory=device.type == "cuda",
        persistent_workers=workers > 0,
        collate_fn=collate_batch,
        drop_last=drop_last,
    )
