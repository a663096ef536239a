"""Image and text encoders built from config: torchvision or timm backbones by name (see
:mod:`emotic_mm.models.backbones`), transformers by id/path.

Normalisation (and the resize to the encoder's working resolution) lives inside the image encoder, so
everything outside the model — augmentation, attacks, predict — works on raw pixels in [0, 255].
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
import torch.nn.functional as F
from torch import nn

from emotic_mm.errors import ConfigError
from emotic_mm.models.backbones import (
    IMAGENET_MEAN,
    IMAGENET_STD,
    build_backbone,
    load_state_file,
    load_strict,
)
from emotic_mm.models.memo import FeatureMemo
from emotic_mm.models.trunk import TrunkSplit, split_trunk

if TYPE_CHECKING:
    from emotic_mm.defenses.contracts import InputDefense

# re-exported from emotic_mm.models.backbones, where the loaders live with the timm backbones
__all__ = [
    "IMAGENET_MEAN",
    "IMAGENET_STD",
    "ImageEncoder",
    "TextEncoder",
    "drop_stem_pool",
    "load_state_file",
    "load_strict",
    "resize_view",
]


def drop_stem_pool(model: nn.Module, name: str) -> None:
    """Skip the stem's max-pool (ResNet-style ``maxpool``), halving the stem's stride from 4 to 2.

    The usual change for 32–64-pixel inputs: with the full stride a 2–3-pixel cue (a mouth at the 64-px
    body view) falls inside one cell of the first feature map. Every later layer sees 4× the positions;
    pretrained weights still load (a pool has none)."""
    if not isinstance(getattr(model, "maxpool", None), nn.MaxPool2d):
        raise ConfigError(
            f"model.image_encoder.stem_pool=false: torchvision {name} has no stem max-pool to skip"
        )
    model.maxpool = nn.Identity()


def resize_view(pixels: torch.Tensor, size: int | None) -> torch.Tensor:
    """(B, 3, H, W) pixels as floats at ``size`` × ``size`` (antialiased bilinear; unchanged when already
    that size or ``size`` is None): the resize every torchvision encoder applies to its view."""
    x = pixels.float()
    if size and x.shape[-1] != size:
        x = F.interpolate(x, size=(size, size), mode="bilinear", align_corners=False, antialias=True)
    return x


class ImageEncoder(nn.Module):
    """Raw pixels (B, 3, H, W) in [0, 255] → features (B, D) through a torchvision or timm backbone.

    The backbone's own normalisation (timm's ``pretrained_cfg`` mean/std, ImageNet's for torchvision)
    runs inside, after the resize to ``input_size``. Training modes:

    * ``freeze=false`` — everything learns (at ``lr × lr_scale`` when ``lr_scale`` ≠ 1);
    * ``freeze=true`` — a fixed feature extractor: it stays in eval mode, so it is a pure function of
      its input, and its features are memoised per distinct picture (``memo_size`` entries) — every
      epoch after the first, every val pass and every repeated attack query reuse them;
    * ``freeze=true, trainable_blocks=N`` — the last N blocks and the head convolution learn (timm
      backbones with ``blocks``), at ``lr × lr_scale``; the frozen trunk runs in eval mode, and where its
      children chain to its forward (:mod:`emotic_mm.models.trunk`) the trunk's output is memoised per
      distinct picture, so that later epochs run only the tail.
    """

    def __init__(
        self,
        name: str = "resnet18",
        weights: str | None = None,
        input_size: int | None = None,
        freeze: bool = False,
        channels_last: bool = False,
        kwargs: dict[str, Any] | None = None,
        stem_pool: bool = True,
        trainable_blocks: int = 0,
        lr_scale: float = 1.0,
        memo_size: int = 50_000,
        memo_chunk: int = 8,
    ) -> None:
        super().__init__()
        made = build_backbone(name, weights, dict(kwargs or {}))
        self.backbone, self.out_dim, self.first_conv = made.module, made.width, made.first_conv
        self.library = made.library
        self.weights = (
            None if weights is None or str(weights).lower() in ("", "none", "null") else str(weights)
        )
        if not stem_pool:
            drop_stem_pool(self.backbone, name)
        self.input_size = int(input_size) if input_size else None
        self.pixel_mean, self.pixel_std = made.mean, made.std
        self.register_buffer("mean", torch.tensor(made.mean).view(1, 3, 1, 1) * 255.0, persistent=False)
        self.register_buffer("std", torch.tensor(made.std).view(1, 3, 1, 1) * 255.0, persistent=False)
        self.lr_scale = float(
            lr_scale
        )  # read by the trainer's optimizer: pretrained weights fine-tune slowly
        self.trainable = _trainable_tail(self.backbone, int(trainable_blocks), name) if freeze else []
        self.frozen = bool(freeze)
        if self.frozen:
            self.backbone.requires_grad_(False)
            for module in self.trainable:
                module.requires_grad_(True)
        self.built_fixed = self.fixed  # as configured (a recipe may freeze a trained backbone later)
        self.trunk_split: TrunkSplit | None = split_trunk(self.backbone, self.trainable)
        self.memo = FeatureMemo(memo_size)
        self.memo_chunk = int(memo_chunk)
        self.channels_last = bool(channels_last)
        if (
            self.channels_last
        ):  # NHWC weights and inputs: faster convolutions on a CPU and on CUDA (docs/models.md)
            self.backbone.to(memory_format=torch.channels_last)
        self.input_defense: InputDefense | None = None  # a pixel-space defense right after working_view
        self.normalise = True

    @property
    def rebuilt_from(self) -> str | None:
        """The named pretrained weights that rebuild this backbone exactly, when it never changes (fixed,
        no first-conv surgery): checkpoints then leave it out. ``None`` when it must be stored."""
        named = self.weights is not None and not Path(self.weights).exists()
        return self.weights if named and self.built_fixed and self.normalise else None

    @property
    def fixed(self) -> bool:
        """No parameter of the backbone learns: its output is a pure function of the pixels."""
        return self.frozen and not self.trainable

    @property
    def memoises(self) -> bool:
        """A fixed part sits at the start of this encoder whose output is memoised: the whole backbone
        (``fixed``) or the frozen trunk of a partial fine-tuning."""
        return self.fixed or self.trunk_split is not None

    def attach_defense(self, defense: InputDefense) -> None:
        """Put an input defense inside the encoder, after the resize to the working view and before
        normalisation, so every attack goes through it. The defense fits the backbone to its output
        (randomized ablation widens the first convolution to the ablated view's channels, which then
        carry their own normalisation)."""
        if defense.adapt_backbone(self.backbone, self.input_size, self.pixel_mean, self.pixel_std):
            if self.channels_last:  # the widened first convolution is a new tensor
                self.backbone.to(memory_format=torch.channels_last)
            self.normalise = False
            self.trunk_split = split_trunk(self.backbone, self.trainable)  # a new first convolution
        self.input_defense = defense
        self.memo = FeatureMemo(self.memo.size)  # what it memoised so far was seen without the defense

    def train(self, mode: bool = True) -> "ImageEncoder":
        super().train(mode)
        if self.frozen:  # frozen backbones keep their BatchNorm statistics; a trainable tail learns
            self.backbone.eval()
            for module in self.trainable:
                module.train(mode)
        return self

    def working_view(self, pixels: torch.Tensor) -> torch.Tensor:
        """The picture this encoder actually looks at: float pixels in [0, 255] at ``input_size``.
        Feeding it back in is exact (no second resize), which lets attacks paint at this resolution."""
        return resize_view(pixels, self.input_size)

    def _backbone_input(self, pixels: torch.Tensor) -> torch.Tensor:
        x = self.working_view(pixels)
        if self.input_defense is not None:
            x = self.input_defense(x)
        if self.normalise:
            x = (x - self.mean) / self.std
        if self.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        return x

    def _encode(self, pixels: torch.Tensor) -> torch.Tensor:
        x = self._backbone_input(pixels)
        backbone = self._folded_backbone(x) if self.fixed and not torch.is_grad_enabled() else self.backbone
        return backbone(x).flatten(1)

    def _memo_rows(self, pixels: torch.Tensor) -> torch.Tensor:
        """What the memo keeps for ``pixels``: the features (fixed) or the frozen trunk's output."""
        if self.fixed:
            return self._encode(pixels)
        with torch.no_grad():
            return self.trunk_split.trunk(self._backbone_input(pixels))

    def _folded_backbone(self, x: torch.Tensor) -> nn.Module:
        """The fixed backbone with its BatchNorms folded (:mod:`emotic_mm.models.folding`), rebuilt whenever
        a weight of the backbone changed (a loaded checkpoint, a widened first convolution, a new device).
        Kept outside the module tree: it is never saved and never trained."""
        from emotic_mm.models.folding import checked_fold

        tensors = list(self.backbone.parameters()) + list(self.backbone.buffers())
        stamp = tuple((id(t), t._version, t.device) for t in tensors)
        cached = self.__dict__.get("_folded")
        if cached is None or cached[0] != stamp:
            cached = (stamp, checked_fold(self.backbone, x[:2].detach().clone(), self.channels_last))
            self.__dict__["_folded"] = cached
        return cached[1]

    @torch.no_grad()
    def warm(self, pixels: torch.Tensor) -> list[bytes]:
        """Memoise the features of ``pixels`` and return their memo keys (see
        :func:`emotic_mm.models.warming.warm_image_features`)."""
        keys = FeatureMemo.keys_of(pixels)
        was = self.training
        self.eval()
        self.memo(keys, lambda rows: self._memo_chunked(pixels[rows]), pixels.device)
        self.train(was)
        return keys

    def forward(self, pixels: torch.Tensor) -> torch.Tensor:
        """Features of ``pixels``. What a fixed part computes (a fixed backbone's features, a partially
        fine-tuned backbone's trunk output) is memoised by content when any input defense in front of it is
        deterministic (a median filter is; ablation draws fresh positions per call) and no gradient to the
        pixels is asked for."""
        memoised_part = self.backbone if self.fixed else self.trunk_split.trunk if self.trunk_split else None
        if (
            memoised_part is None
            or (self.input_defense is not None and not self.input_defense.deterministic)
            or pixels.requires_grad
            or self.memo.size <= 0
            or torch.is_grad_enabled()
            and any(p.requires_grad for p in memoised_part.parameters())
        ):
            return self._encode(pixels)
        kept = self.memo(
            FeatureMemo.keys_of(pixels), lambda rows: self._memo_chunked(pixels[rows]), pixels.device
        )
        return kept if self.fixed else self.trunk_split.tail(kept).flatten(1)

    def _memo_chunked(self, pixels: torch.Tensor) -> torch.Tensor:
        """Memo rows of new pictures, ``memo_chunk`` at a time: on a CPU a backbone runs faster on small
        batches, whose activations stay in cache (images/s by batch size: docs/models.md)."""
        step = self.memo_chunk if pixels.device.type == "cpu" and self.memo_chunk > 0 else len(pixels)
        return torch.cat([self._memo_rows(pixels[i : i + step]) for i in range(0, len(pixels), max(step, 1))])


def _trainable_tail(backbone: nn.Module, blocks: int, name: str) -> list[nn.Module]:
    """The last ``blocks`` blocks of a timm backbone and every layer after them (head conv, norm)."""
    if blocks <= 0:
        return []
    stages = getattr(backbone, "blocks", None)
    if not isinstance(stages, nn.Sequential):
        raise ConfigError(
            f"model.image_encoder.trainable_blocks={blocks}: {name} has no timm-style 'blocks' "
            "to train partially (use freeze=false to fine-tune it whole)"
        )
    flat = [b for stage in stages for b in (stage if isinstance(stage, nn.Sequential) else [stage])]
    if blocks > len(flat):
        raise ConfigError(f"model.image_encoder.trainable_blocks={blocks}: {name} has {len(flat)} blocks")
    children = list(backbone.named_children())
    after = [
        m
        for i, (n, m) in enumerate(children)
        if i > [c for c, _ in children].index("blocks") and any(True for _ in m.parameters())
    ]
    return flat[len(flat) - blocks :] + after


class TextEncoder(nn.Module):
    """Token ids → a mean-pooled sentence embedding from any transformers encoder.

    When frozen, the encoder is a pure function of the token ids, so pooled outputs are memoised per
    distinct sequence (an LRU of ``cache_size`` entries): every epoch after the first, every val pass
    and every attack query reuse them instead of re-running the transformer.
    """

    def __init__(
        self, name: str, freeze: bool = True, cache_size: int = 200_000, lr_scale: float = 1.0
    ) -> None:
        super().__init__()
        self.lr_scale = float(
            lr_scale
        )  # read by the trainer's optimizer: pretrained weights fine-tune slowly
        from transformers import AutoModel
        from transformers.utils import logging as hf_logging

        from emotic_mm.pretrained import load_pretrained

        hf_logging.disable_progress_bar()  # a local load needs no bar; stderr stays for what a user must read
        self.name = name
        self.model = load_pretrained(AutoModel, name, "model.text_encoder.name", "a transformers encoder")
        self.out_dim = int(self.model.config.hidden_size)
        self.frozen = bool(freeze)
        if self.frozen:
            self.model.requires_grad_(False)
        self.memo = FeatureMemo(cache_size)

    def train(self, mode: bool = True) -> "TextEncoder":
        super().train(mode)
        if self.frozen:
            self.model.eval()
        return self

    def _encode(self, ids: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        width = int(mask.sum(1).max().item()) if mask.numel() else ids.shape[1]
        ids, mask = ids[:, : max(width, 1)], mask[:, : max(width, 1)]  # drop all-padding columns
        hidden = self.model(input_ids=ids, attention_mask=mask).last_hidden_state
        m = mask.unsqueeze(-1).to(hidden.dtype)
        return (hidden * m).sum(1) / m.sum(1).clamp_min(1.0)

    @torch.no_grad()
    def warm(self, input_ids: torch.Tensor, attention_mask: torch.Tensor, batch_size: int = 128) -> None:
        """Fill the memo in a fixed order and batching, so cached features never depend on how
        training batches happened to be composed (exact resume, identical runs)."""
        if not self.frozen or self.memo.size <= 0:
            return
        device = next(self.model.parameters()).device
        for start in range(0, input_ids.shape[0], batch_size):
            self(
                input_ids[start : start + batch_size].to(device),
                attention_mask[start : start + batch_size].to(device),
            )

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        if not self.frozen or self.memo.size <= 0:
            return self._encode(input_ids, attention_mask)
        keys = FeatureMemo.keys_of(input_ids * attention_mask)
        return self.memo(
            keys, lambda rows: self._encode(input_ids[rows], attention_mask[rows]), input_ids.device
        )
