"""Store split → batches: the dict every model, attack and metric of the project consumes.

Pixels stay uint8 in (C, H, W) layout (normalisation lives inside the models), text arrives as token
ids with an attention mask, labels as float tensors. Reading goes through ``__getitems__`` so one batch
is one sorted fancy-index read per memory-mapped array rather than ``batch_size`` small reads.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset

from emotic_mm.data.store import StoreSplit

FIELDS = ("context", "body", "text")


class EmoticDataset(Dataset):
    """Items of one store split; ``modalities`` limits which pixel/text fields are read at all."""

    def __init__(self, split: StoreSplit, modalities: Sequence[str] = FIELDS) -> None:
        self.split = split
        self.modalities = tuple(modalities)
        if "text" in self.modalities and split.token_ids is None:
            from emotic_mm.errors import DataFormatError

            raise DataFormatError(
                f"store split {split.name!r} has no token ids (a community-converter folder?); "
                "re-run `emotic-mm prepare` to add descriptions"
            )

    def __len__(self) -> int:
        return len(self.split)

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        batch = self.__getitems__([index])
        return {k: v[0] for k, v in batch.items()}

    def __getitems__(self, indices: Sequence[int]) -> dict[str, torch.Tensor]:
        idx = np.asarray(indices, dtype=np.int64)
        order = np.argsort(idx, kind="stable")
        sorted_idx = idx[order]
        inverse = np.empty_like(order)
        inverse[order] = np.arange(len(order))

        def read(array: np.ndarray) -> np.ndarray:
            return np.asarray(array[sorted_idx])[inverse]

        s = self.split
        out: dict[str, torch.Tensor] = {"index": torch.from_numpy(idx.copy())}
        if "context" in self.modalities:
            out["context"] = torch.from_numpy(read(s.context)).permute(0, 3, 1, 2).contiguous()
        if "body" in self.modalities:
            out["body"] = torch.from_numpy(read(s.body)).permute(0, 3, 1, 2).contiguous()
        if "text" in self.modalities:
            ids = read(s.token_ids).astype(np.int64)
            lengths = read(s.token_lengths)
            out["input_ids"] = torch.from_numpy(ids)
            out["attention_mask"] = (torch.arange(ids.shape[1])[None, :] < torch.from_numpy(lengths)[:, None]).long()
        out["categories"] = torch.from_numpy(read(s.categories).astype(np.float32))
        out["vad"] = torch.from_numpy(read(s.vad).astype(np.float32))
        if s.votes is not None:
            out["votes"] = torch.from_numpy(read(s.votes).astype(np.float32))
        return out


def collate_batch(batch: Any) -> Any:
    """``__getitems__`` already returns a batch; plain item lists fall back to stacking."""
    if isinstance(batch, dict):
        return batch
    return {k: torch.stack([item[k] for item in batch]) for k in batch[0]}
