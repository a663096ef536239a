"""Input smoothing defenses: pixel-space transforms that sit inside the image encoders.

Why here and in this shape: the study's attacks paint pixels of the picture the encoder sees and query
the whole model, so a defense that lives *inside* the model's preprocessing — right after
``working_view`` and before normalisation — is attacked adaptively by construction (every query goes
through it). Both transforms take and return float pixels ``(B, 3, H, W)`` in [0, 255], are batched and
deterministic, and contain no parameters, so they compose with every variant and modality set.

* :class:`MedianFilter` — a ``window`` × ``window`` median per channel (spatial smoothing, as ART's
  ``SpatialSmoothing``). Few-pixel attacks set isolated pixels to extreme colours; a median over a
  window removes any change of fewer than ⌈window²/2⌉ pixels inside that window. Borders mirror the
  image (``scipy.ndimage.median_filter(mode="mirror")``, which the tests check against).
  Differentiable almost everywhere (the gradient flows to the selected pixel).
* :class:`BitDepth` — feature squeezing (Xu et al., NDSS 2018): quantise each channel to ``bits`` bits.
  Deterministic; its gradient is zero almost everywhere (rounding), which matters only for white-box
  gradient attacks, not for the black-box attacks of the study.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from emotic_mm.config import whole_number
from emotic_mm.errors import ConfigError


class PixelFilter(nn.Module):
    """An :class:`~emotic_mm.defenses.contracts.InputDefense` that returns pixels: the backbone reads its
    output as it read the picture, so nothing about the backbone changes."""

    name = "pixel filter"
    out_channels = 3
    deterministic = True

    def adapt_backbone(
        self, backbone: nn.Module, view_size: int | None, mean: Sequence[float], std: Sequence[float]
    ) -> bool:
        return False


class MedianFilter(PixelFilter):
    """Per-channel median over a ``window`` × ``window`` neighbourhood, mirrored at the borders."""

    name = "median"

    def __init__(self, window: int = 3) -> None:
        super().__init__()
        self.window = whole_number(window, "defense.window", 3)
        if self.window % 2 == 0:
            raise ConfigError(f"defense.window={window!r} must be odd (a window centred on its pixel)")

    def extra_repr(self) -> str:
        return f"window={self.window}"

    def forward(self, pixels: torch.Tensor) -> torch.Tensor:
        if pixels.dim() != 4:
            raise ValueError(f"MedianFilter expects (B, C, H, W) pixels, got shape {tuple(pixels.shape)}")
        b, c, h, w = pixels.shape
        pad = self.window // 2
        if pad >= h or pad >= w:
            raise ConfigError(
                f"defense.window={self.window} is too large for the {h}x{w} picture the encoder sees "
                f"(at most {2 * min(h, w) - 1})"
            )
        x = F.pad(pixels.float(), (pad, pad, pad, pad), mode="reflect")
        if self.window == 3:
            return _median_of_nine([x[:, :, i : i + h, j : j + w] for i in range(3) for j in range(3)])
        # (B, C, H, W, window, window): every pixel's neighbourhood, as a view (no copy until median)
        patches = x.unfold(2, self.window, 1).unfold(3, self.window, 1)
        # window² is odd, so the median is the exact middle element
        return patches.reshape(b, c, h, w, self.window * self.window).median(dim=-1).values


# The 19 compare-exchanges of Paeth's median-of-nine network (Graphics Gems, 1990): after them, position 4
# holds the middle value. Elementwise minima and maxima over the nine shifted views are exact and several
# times faster on a CPU than sorting every neighbourhood (the 3 × 3 filter runs on every attack query).
_MEDIAN9 = (
    (1, 2), (4, 5), (7, 8), (0, 1), (3, 4), (6, 7), (1, 2), (4, 5), (7, 8), (0, 3),
    (5, 8), (4, 7), (3, 6), (1, 4), (2, 5), (4, 7), (4, 2), (6, 4), (4, 2),
)  # fmt: skip


def _median_of_nine(values: list[torch.Tensor]) -> torch.Tensor:
    v = list(values)
    for a, b in _MEDIAN9:
        v[a], v[b] = torch.minimum(v[a], v[b]), torch.maximum(v[a], v[b])
    return v[4]


class BitDepth(PixelFilter):
    """Feature squeezing: each channel quantised to ``bits`` bits (2**bits levels spanning 0..255)."""

    name = "squeeze"

    def __init__(self, bits: int = 4) -> None:
        super().__init__()
        self.bits = whole_number(bits, "defense.bits", 1, 8)
        self.levels = float(2**self.bits - 1)

    def extra_repr(self) -> str:
        return f"bits={self.bits}"

    def forward(self, pixels: torch.Tensor) -> torch.Tensor:
        x = pixels.float().clamp(0.0, 255.0)
        return torch.round(x / 255.0 * self.levels) / self.levels * 255.0


def median_from_config(block: Any) -> MedianFilter:
    """``defense=median`` → the filter (``defense.window``)."""
    from emotic_mm.defenses.settings import setting

    return MedianFilter(window=setting(block, "window", 3))


def squeeze_from_config(block: Any) -> BitDepth:
    """``defense=squeeze`` → bit-depth reduction (``defense.bits``)."""
    from emotic_mm.defenses.settings import setting

    return BitDepth(bits=setting(block, "bits", 4))
