"""Memoised features of a frozen encoder: a frozen tower is a pure function of its input, so its output
for an input it has seen is looked up instead of recomputed (LRU of ``size`` entries, keyed by the
input's bytes). The MiniLM text encoder and the frozen CLIP/SigLIP towers share this one mechanism."""

from __future__ import annotations

import hashlib
from collections import OrderedDict
from collections.abc import Callable

import torch


class FeatureMemo:
    """``memo(keys, inputs, encode)``: rows of ``encode`` for each key, encoding only unseen keys once."""

    def __init__(self, size: int = 200_000) -> None:
        self.size = int(size)
        self._cache: OrderedDict[bytes, torch.Tensor] = OrderedDict()

    def __len__(self) -> int:
        return len(self._cache)

    @staticmethod
    def keys_of(rows: torch.Tensor) -> list[bytes]:
        """One key per row: its bytes (short rows, e.g. token ids) or their digest (pictures).

        A float picture whose values are all whole numbers in 0–255 is keyed as its uint8 version: it is
        the same picture (the conversion is exact), whether the loader's uint8 or a flipped float copy."""
        flat = rows.detach().cpu().contiguous().reshape(rows.shape[0], -1)
        if flat.is_floating_point() and flat.numel():
            whole = ((flat == flat.round()) & (flat >= 0) & (flat <= 255)).all(1)
            if bool(whole.all()):
                flat = flat.to(torch.uint8)
            elif bool(whole.any()):
                return [FeatureMemo.keys_of(row[None])[0] for row in flat]
        flat = flat.numpy()
        if flat.shape[1] * flat.itemsize <= 1024:
            return [row.tobytes() for row in flat]
        return [hashlib.blake2b(row.tobytes(), digest_size=16).digest() for row in flat]

    def add(self, keys: list[bytes], features: torch.Tensor) -> None:
        """Insert known features (e.g. read from disk) without encoding anything."""
        for k, vec in zip(keys, features):
            self._cache[k] = vec
        while len(self._cache) > self.size:
            self._cache.popitem(last=False)

    def known(self, keys: list[bytes]) -> tuple[list[bytes], torch.Tensor | None]:
        """The keys of ``keys`` the memo holds and their features stacked (``None`` when none)."""
        held = [k for k in dict.fromkeys(keys) if k in self._cache]
        return held, torch.stack([self._cache[k] for k in held]) if held else None

    @torch.no_grad()
    def __call__(
        self, keys: list[bytes], encode: Callable[[torch.Tensor], torch.Tensor], device: torch.device
    ) -> torch.Tensor:
        """``encode(rows)`` receives the positions (a long tensor on ``device``) of the first occurrence
        of each unseen key and returns their features."""
        missing = list(dict.fromkeys(k for k in keys if k not in self._cache))
        if missing:
            first: dict[bytes, int] = {}
            for i, k in enumerate(keys):
                first.setdefault(k, i)
            encoded = encode(torch.tensor([first[k] for k in missing], device=device)).float()  # one pass
            for k, vec in zip(missing, encoded):
                self._cache[k] = vec.detach()
            while len(self._cache) > self.size:
                self._cache.popitem(last=False)
        for k in keys:
            self._cache.move_to_end(k)
        return torch.stack([self._cache[k] for k in keys]).to(device)
