"""Augmentations on batched tensors (after the loader, on the training device).

Both views of a person get the same flip, so context and body stay consistent. Output pixels are float
in [0, 255] — the models normalise inside.
"""

from __future__ import annotations

import torch


def augment_batch(
    batch: dict[str, torch.Tensor],
    flip: bool,
    brightness: float,
    contrast: float,
    generator: torch.Generator | None = None,
) -> dict[str, torch.Tensor]:
    views = [k for k in ("context", "body") if k in batch]
    if not views or (not flip and brightness <= 0 and contrast <= 0):
        return batch
    n = batch[views[0]].shape[0]
    device = batch[views[0]].device

    def rand(*shape: int) -> torch.Tensor:
        return torch.rand(*shape, generator=generator).to(device)

    do_flip = rand(n) < 0.5 if flip else torch.zeros(n, dtype=torch.bool, device=device)
    gain = 1 + (rand(n) * 2 - 1) * brightness
    scale = 1 + (rand(n) * 2 - 1) * contrast
    out = dict(batch)
    for k in views:
        x = batch[k].float()
        x = torch.where(do_flip[:, None, None, None], x.flip(-1), x)
        if contrast > 0:  # skipped when off: a flip alone leaves pixel values exact (memoised features match)
            mean = x.mean(dim=(1, 2, 3), keepdim=True)
            x = (x - mean) * scale[:, None, None, None] + mean
        if brightness > 0:
            x = x * gain[:, None, None, None]
        out[k] = x.clamp(0, 255)
    return out
