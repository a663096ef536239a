"""Image and text encoders built from config: torchvision backbones by name, transformers by id/path.

Normalisation (and the resize to the encoder's working resolution) lives inside the image encoder, so
everything outside the model — augmentation, attacks, predict — works on raw pixels in [0, 255].
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from emotic_mm.errors import ConfigError
from emotic_mm.models.memo import FeatureMemo

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
_HEAD_ATTRS = ("fc", "classifier", "heads", "head")


def _strip_classifier(model: nn.Module, name: str) -> int:
    """Replace the classification head by Identity; return the feature width it consumed."""
    for attr in _HEAD_ATTRS:
        head = getattr(model, attr, None)
        if head is None:
            continue
        linears = [m for m in head.modules() if isinstance(m, nn.Linear)]
        if isinstance(head, nn.Linear) or linears:
            width = (head if isinstance(head, nn.Linear) else linears[0]).in_features
            setattr(model, attr, nn.Identity())
            return width
    raise ConfigError(f"model.image_encoder.name={name!r}: no fc/classifier/heads layer to replace")


def _load_backbone(name: str, weights: str | None, kwargs: dict[str, Any]) -> nn.Module:
    import torchvision

    try:
        builder = torchvision.models.get_model_builder(name)
    except ValueError:
        raise ConfigError(
            f"model.image_encoder.name={name!r} is not a torchvision model "
            f"(e.g. resnet18, resnet50, mobilenet_v3_small, efficientnet_b0)"
        ) from None
    if weights is None or str(weights).lower() in ("", "none", "null"):
        return builder(weights=None, **kwargs)
    path = Path(str(weights))
    if path.exists():
        model = builder(weights=None, **kwargs)
        load_strict(model, load_state_file(path), path, name)
        return model
    try:
        enum = torchvision.models.get_model_weights(name)[str(weights)]
    except (KeyError, ValueError):
        raise ConfigError(
            f"model.image_encoder.weights={weights!r}: neither a file nor a torchvision weights name for {name}"
        ) from None
    return builder(weights=enum, **kwargs)


def load_strict(model: nn.Module, state: dict[str, torch.Tensor], path: Path, name: str) -> None:
    """Load every weight of ``path`` into ``model``, or stop with one line listing what does not fit.

    Only the classification head may be missing from the file: it is replaced by Identity right after,
    so a feature-extractor file (no ``fc.*``) is fine. Any other missing, unexpected or mis-shaped key
    means the file is for another architecture, and silently keeping random weights would hide that.
    """
    expected = model.state_dict()
    missing = sorted(k for k in set(expected) - set(state) if k.split(".")[0] not in _HEAD_ATTRS)
    unexpected = sorted(set(state) - set(expected))
    wrong = sorted(k for k in set(state) & set(expected) if tuple(state[k].shape) != tuple(expected[k].shape))
    if missing or unexpected or wrong:
        detail = "; ".join(f"{len(v)} {label} ({', '.join(v[:3])}{', ...' if len(v) > 3 else ''})"
                           for label, v in (("missing", missing), ("unexpected", unexpected),
                                            ("of another shape", wrong)) if v)
        raise ConfigError(f"model.image_encoder.weights={path}: does not fit torchvision {name}: {detail}")
    model.load_state_dict(state, strict=False)  # strict up to the head, checked above


def load_state_file(path: Path) -> dict[str, torch.Tensor]:
    """A state dict from .safetensors, or from a torch file without executing pickled code; a file
    that is neither (truncated, a pickle of objects, not a dict of tensors) is one line naming it."""
    path = Path(path)
    try:
        if path.suffix == ".safetensors":
            from safetensors.torch import load_file

            return load_file(str(path))
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # a foreign file fails in many ways (struct.error, UnpicklingError, ...)
        raise ConfigError(f"model.image_encoder.weights={path}: not a readable weights file "
                          f"({type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''})") from None
    if isinstance(state, dict) and "state_dict" in state:
        state = state["state_dict"]
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise ConfigError(f"model.image_encoder.weights={path}: not a state dict (a mapping of names to tensors)")
    return state


def drop_stem_pool(model: nn.Module, name: str) -> None:
    """Skip the stem's max-pool (ResNet-style ``maxpool``), halving the stem's stride from 4 to 2.

    The usual change for 32–64-pixel inputs: with the full stride a 2–3-pixel cue (a mouth at the 64-px
    body view) falls inside one cell of the first feature map. Every later layer sees 4× the positions;
    pretrained weights still load (a pool has none)."""
    if not isinstance(getattr(model, "maxpool", None), nn.MaxPool2d):
        raise ConfigError(f"model.image_encoder.stem_pool=false: torchvision {name} has no stem max-pool to skip")
    model.maxpool = nn.Identity()


def resize_view(pixels: torch.Tensor, size: int | None) -> torch.Tensor:
    """(B, 3, H, W) pixels as floats at ``size`` × ``size`` (antialiased bilinear; unchanged when already
    that size or ``size`` is None): the resize every torchvision encoder applies to its view."""
    x = pixels.float()
    if size and x.shape[-1] != size:
        x = F.interpolate(x, size=(size, size), mode="bilinear", align_corners=False, antialias=True)
    return x


class ImageEncoder(nn.Module):
    """Raw pixels (B, 3, H, W) in [0, 255] → features (B, D) through a torchvision backbone."""

    def __init__(self, name: str = "resnet18", weights: str | None = None, input_size: int | None = None,
                 freeze: bool = False, channels_last: bool = False, kwargs: dict[str, Any] | None = None,
                 stem_pool: bool = True) -> None:
        super().__init__()
        self.backbone = _load_backbone(name, weights, dict(kwargs or {}))
        if not stem_pool:
            drop_stem_pool(self.backbone, name)
        self.out_dim = _strip_classifier(self.backbone, name)
        self.input_size = int(input_size) if input_size else None
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1) * 255.0, persistent=False)
        self.register_buffer("std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1) * 255.0, persistent=False)
        self.frozen = bool(freeze)
        if self.frozen:
            self.backbone.requires_grad_(False)
        self.channels_last = channels_last
        self.input_defense: nn.Module | None = None  # a pixel-space defense right after working_view
        self.normalise = True

    def attach_defense(self, defense: nn.Module) -> None:
        """Put an input defense inside the encoder, after the resize to the working view and before
        normalisation, so every attack goes through it. Randomized ablation also widens the first
        convolution to the ablated view's channels (which carry their own normalisation)."""
        from emotic_mm.defenses.ablation import RandomAblation, adapt_first_conv, check_keep

        if isinstance(defense, RandomAblation):
            if self.input_size:
                check_keep(defense.keep, self.input_size, self.input_size)
            adapt_first_conv(self.backbone, 3, IMAGENET_MEAN, IMAGENET_STD)
            self.normalise = False
        self.input_defense = defense

    def train(self, mode: bool = True) -> "ImageEncoder":
        super().train(mode)
        if self.frozen:  # frozen backbones keep their BatchNorm statistics
            self.backbone.eval()
        return self

    def working_view(self, pixels: torch.Tensor) -> torch.Tensor:
        """The picture this encoder actually looks at: float pixels in [0, 255] at ``input_size``.
        Feeding it back in is exact (no second resize), which lets attacks paint at this resolution."""
        return resize_view(pixels, self.input_size)

    def forward(self, pixels: torch.Tensor) -> torch.Tensor:
        x = self.working_view(pixels)
        if self.input_defense is not None:
            x = self.input_defense(x)
        if self.normalise:
            x = (x - self.mean) / self.std
        if self.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        return self.backbone(x).flatten(1)


class TextEncoder(nn.Module):
    """Token ids → a mean-pooled sentence embedding from any transformers encoder.

    When frozen, the encoder is a pure function of the token ids, so pooled outputs are memoised per
    distinct sequence (an LRU of ``cache_size`` entries): every epoch after the first, every val pass
    and every attack query reuse them instead of re-running the transformer.
    """

    def __init__(self, name: str, freeze: bool = True, cache_size: int = 200_000, lr_scale: float = 1.0) -> None:
        super().__init__()
        self.lr_scale = float(lr_scale)  # read by the trainer's optimizer: pretrained weights fine-tune slowly
        from transformers import AutoModel
        from transformers.utils import logging as hf_logging

        from emotic_mm.config import resolve_model_name

        hf_logging.disable_progress_bar()  # a local load needs no bar; stderr stays for what a user must read
        self.name = name
        try:
            self.model = AutoModel.from_pretrained(resolve_model_name(name))
        except (OSError, ValueError) as exc:
            raise ConfigError(f"model.text_encoder.name={name!r}: cannot load a transformers encoder ({exc})") from None
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
        ids, mask = ids[:, :max(width, 1)], mask[:, :max(width, 1)]  # drop all-padding columns
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
            self(input_ids[start:start + batch_size].to(device), attention_mask[start:start + batch_size].to(device))

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        if not self.frozen or self.memo.size <= 0:
            return self._encode(input_ids, attention_mask)
        keys = FeatureMemo.keys_of(input_ids * attention_mask)
        return self.memo(keys, lambda rows: self._encode(input_ids[rows], attention_mask[rows]), input_ids.device)
