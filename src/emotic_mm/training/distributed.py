"""torchrun awareness: process group setup (NCCL on GPU, gloo on CPU), rank, and rank-0 gating,
plus the exact (never padded) split of a dataset that evaluation and attacks need."""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import torch
import torch.distributed as dist
from torch.utils.data import Sampler


@dataclass
class DistInfo:
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def enabled(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def setup_distributed(device_type: str) -> DistInfo:
    """Join the process group torchrun describes in the environment (no-op for a single process)."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return DistInfo()
    if not dist.is_initialized():
        backend = "nccl" if device_type == "cuda" else "gloo"
        dist.init_process_group(backend=backend)
    info = DistInfo(
        rank=dist.get_rank(),
        world_size=dist.get_world_size(),
        local_rank=int(os.environ.get("LOCAL_RANK", "0")),
    )
    if device_type == "cuda":
        torch.cuda.set_device(info.local_rank)
    if not info.is_main:  # rank-0-only logging: the others speak only to warn (ranks share a run dir)
        logging.getLogger().setLevel(logging.WARNING)
    return info


def barrier(info: DistInfo) -> None:
    if info.enabled:
        dist.barrier()


def cleanup(info: DistInfo) -> None:
    if info.enabled and dist.is_initialized():
        dist.destroy_process_group()


def shard_bounds(length: int, rank: int, world_size: int) -> tuple[int, int]:
    """``[start, stop)`` of rank ``rank``'s contiguous block; block sizes differ by at most one."""
    if not 0 <= rank < world_size:
        raise ValueError(f"rank {rank} outside world size {world_size}")
    base, extra = divmod(length, world_size)
    start = rank * base + min(rank, extra)
    return start, start + base + (1 if rank < extra else 0)


class ShardSampler(Sampler[int]):
    """Every index exactly once across ranks, in order: rank r reads one contiguous block.

    ``DistributedSampler`` pads the last ranks with repeated samples so that all ranks take the same
    number of steps — right for training, wrong for metrics (a repeated person counts twice). Blocks
    in rank order also make the gathered outputs come back in dataset order by concatenation.
    """

    def __init__(self, length: int, rank: int = 0, world_size: int = 1) -> None:
        self.start, self.stop = shard_bounds(length, rank, world_size)

    def __iter__(self) -> Iterator[int]:
        return iter(range(self.start, self.stop))

    def __len__(self) -> int:
        return self.stop - self.start


def gather_to_main(obj: Any, info: DistInfo) -> list[Any] | None:
    """Every rank's ``obj`` in rank order on rank 0 (``None`` elsewhere); ``[obj]`` in one process.

    Objects are pickled (``gather_object``), so keep them to CPU tensors, arrays and plain data.
    """
    if not info.enabled:
        return [obj]
    out: list[Any] | None = [None] * info.world_size if info.is_main else None
    dist.gather_object(obj, out, dst=0)
    return out


def gather_with_grad(x: torch.Tensor) -> torch.Tensor:
    """Every rank's rows of ``x`` concatenated in rank order, differentiable (one process: ``x``).

    The contrastive loss needs the whole global batch's negatives: with this, N ranks train the same
    objective as one process with the global batch (as open_clip's ``gather_with_grad``). The backward
    of the gather sums each rank's gradient into the rows it owns; DDP's averaging then restores the
    one-process gradient.
    """
    if not (dist.is_available() and dist.is_initialized()) or dist.get_world_size() == 1:
        return x
    import torch.distributed.nn.functional as dist_nn

    return torch.cat(dist_nn.all_gather(x.contiguous()), dim=0)


def sum_across_ranks(x: torch.Tensor) -> torch.Tensor:
    """``x`` summed over ranks (no gradient), e.g. label counts that must describe the global batch."""
    if not (dist.is_available() and dist.is_initialized()) or dist.get_world_size() == 1:
        return x
    total = x.detach().clone()
    dist.all_reduce(total, op=dist.ReduceOp.SUM)
    return total
