"""Frozen encoders' features computed up front, over whole datasets in store order.

A frozen encoder's features depend only on its input, so computing them once per dataset, in fixed
batches, makes every later forward pass read them and keeps runs identical however batches are drawn.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from emotic_mm.data.loader import EmoticDataset
from emotic_mm.models import feature_cache
from emotic_mm.progress import progress_bar


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


def warm_image_features(
    model: Any, datasets: list[tuple[Any, bool]], batch_size: int = 64, cache_dir: Path | None = None
) -> None:
    """Compute what each image encoder memoises (``encoder.memoises``: a frozen backbone's features, or a
    partially fine-tuned backbone's frozen trunk output) for
    every picture of each ``(dataset, mirrored)`` up front — and of its mirror image when ``mirrored``
    (training flips) — in dataset order and fixed batches, so that a memoised feature never depends on
    how training batches happened to be composed (exact resume, identical runs). Skipped when the
    pictures would not fit the memo. With ``cache_dir``, features an earlier run computed are read from
    there and new ones written back (:mod:`emotic_mm.models.feature_cache`; fixed encoders only: a
    trunk's output is kept in memory for the run)."""
    encoders = {
        m: e
        for m, e in getattr(model, "image_encoders", {}).items()
        if getattr(e, "memoises", False)
        and e.memo.size > 0
        and (e.input_defense is None or e.input_defense.deterministic)
    }
    needed = sum(len(ds) * (2 if mirrored else 1) for ds, mirrored in datasets)
    if not encoders or needed > min(e.memo.size for e in encoders.values()):
        return
    device = next(iter(encoders.values())).mean.device
    files = (
        {
            view: feature_cache.cache_file(cache_dir, view, e, device)
            for view, e in encoders.items()
            if e.fixed
        }
        if cache_dir
        else {}
    )
    loaded = {view: feature_cache.load(file, encoders[view], device) for view, file in files.items()}
    warmed: dict[str, list[bytes]] = {view: [] for view in encoders}
    with progress_bar("image features", needed, "persons") as advance:
        for ds, mirrored in datasets:
            for start in range(0, len(ds), batch_size):
                batch = ds.__getitems__(list(range(start, min(start + batch_size, len(ds)))))
                for view, encoder in encoders.items():
                    pixels = batch[view].to(device)
                    for picture in (pixels, pixels.flip(-1)) if mirrored else (pixels,):
                        warmed[view].extend(encoder.warm(picture))  # each picture hashed once
                advance(len(batch[next(iter(encoders))]) * (2 if mirrored else 1))
    for view, file in files.items():
        known = set(loaded[view])
        if any(k not in known for k in warmed[view]):  # new features: the file gets them (and keeps its own)
            feature_cache.save(file, encoders[view], list(dict.fromkeys(loaded[view] + warmed[view])))
