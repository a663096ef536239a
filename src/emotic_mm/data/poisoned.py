"""A poisoned training set as a *view* of a store split: chosen rows are edited as they are read.

The store on disk is never modified; the trainer reads this view like any :class:`EmoticDataset`
(same batch contract, same ``__getitems__`` batching), so a poisoned model is trained by the ordinary
trainer with the clean model's config.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import torch
from torch.utils.data import Dataset

from emotic_mm.data.loader import EmoticDataset

Edit = Callable[[dict[str, torch.Tensor], torch.Tensor], dict[str, torch.Tensor]]


class PoisonedView(Dataset):
    """``base`` with ``edit(batch, rows)`` applied to the rows of each batch whose store index is in
    ``poisoned``; ``rows`` are positions within the batch."""

    def __init__(self, base: EmoticDataset, poisoned: np.ndarray, edit: Edit) -> None:
        self.base = base
        self.poisoned = np.unique(np.asarray(poisoned, dtype=np.int64))
        self.edit = edit

    @property
    def split(self):  # what warm_text_features and the stages read
        return self.base.split

    @property
    def modalities(self) -> tuple[str, ...]:
        return self.base.modalities

    def __len__(self) -> int:
        return len(self.base)

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        batch = self.__getitems__([index])
        return {k: v[0] for k, v in batch.items()}

    def __getitems__(self, indices: Sequence[int]) -> dict[str, torch.Tensor]:
        batch = self.base.__getitems__(indices)
        hit = np.isin(batch["index"].numpy(), self.poisoned)
        if not hit.any():
            return batch
        return self.edit(batch, torch.from_numpy(np.flatnonzero(hit)))


def replace_rows(batch: dict[str, torch.Tensor], rows: torch.Tensor, updates: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Write ``updates`` (one entry per row) into ``rows`` of ``batch`` in place and return it.

    In place is safe here: every batch :class:`EmoticDataset` returns is freshly read into new arrays
    (never a view of the memory-mapped store). Writing only the edited rows keeps a poisoned view's read
    close to the plain read, where copying whole columns would copy every row of the batch (the read
    overhead: ``scripts/benchmarks/bench_poison.py``, docs/results/2026-12-02-benchmarks.md).
    """
    for key, values in updates.items():
        batch[key][rows] = values.to(batch[key].dtype)
    return batch


class KeptRows(Dataset):
    """``view`` without the rows a poison detector flagged: what a filtered retraining reads."""

    def __init__(self, view: Dataset, keep: np.ndarray) -> None:
        self.view = view
        self.keep = np.asarray(keep, dtype=np.int64)

    @property
    def split(self):
        return self.view.split

    @property
    def modalities(self) -> tuple[str, ...]:
        return self.view.modalities

    def __len__(self) -> int:
        return len(self.keep)

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        batch = self.__getitems__([index])
        return {k: v[0] for k, v in batch.items()}

    def __getitems__(self, indices: Sequence[int]) -> dict[str, torch.Tensor]:
        return self.view.__getitems__(self.keep[np.asarray(indices, dtype=np.int64)].tolist())
