"""Randomized ablation (Levine & Feizi, AAAI 2020, "Robustness Certificates for Sparse Adversarial Attacks
by Randomized Ablation"): the base classifier sees only ``keep`` uniformly random pixels of the picture;
the smoothed classifier is the majority vote over many such views, and its vote share certifies an L0
radius (:mod:`emotic_mm.defenses.certify`).

Why our own, batched code: no library certifies a multimodal model against L0 attacks. ART's
derandomized smoothing targets patches on single-tensor classifiers, the paper's reference code
(github.com/alevine0/randomizedAblation) certifies one single-input image at a time. Here the vote
sampler, like the pixel-attack engine, flattens (persons × samples) into chunks of ``max_batch`` rows and
hands each chunk, with the row → person map (``owner``), to a ``classify`` callable — so a multimodal
model can pair each ablated context view with that person's body crop and description (or their cached
features) and run one forward pass per chunk.

**Encoding of ablated pixels** (the paper's multichannel encoding, ``utils_color.py`` of the reference
code, ``random_mask_batch_one_sample``): pixel values are scaled to x ∈ [0, 1]; for every colour channel
c there are two channels, ``x_c`` and ``1 − x_c`` at kept pixels and ``(0, 0)`` at ablated ones. The
output is ``(B, 2C, H, W)`` ordered ``[x_0..x_{C-1}, 1−x_0..1−x_{C-1}]`` as in the reference
(``torch.cat((out_c1, out_c2), 1)``). We chose it over the paper's alternative "mean" encoding
(``*_mean.py``: ablated pixels set to the dataset mean) because (0, 0) is a value no kept pixel can take,
so "absent" is never confused with a real colour (with the mean encoding, a kept pixel of exactly the mean
colour is indistinguishable from an absent one). The kept positions are the same for all colour channels,
and d (the pixel count of the certificate) is H·W, as in the reference (``batch[0,0].nelement()``).

:func:`adapt_first_conv` widens a torchvision backbone's first convolution to the 2C channels and
initialises it from the pretrained 3-channel weights so that, on kept pixels, it computes exactly what
the pretrained conv computed on the normalised pixel, and an absent pixel looks like the mean colour
(normalised 0). With it the encoder must feed the encoding unnormalised (the normalisation is folded in).

**Sampling.** ``ablate`` (training) draws fresh positions per image. ``sample_votes`` (the smoothed
classifier) draws, for each of the ``n`` samples, one position set shared by all persons of the call,
from a generator, in blocks whose size depends only on d — so a person's votes depend only on its
pixels, ``keep``, ``n`` and the seed, never on which other persons are in the batch or on ``max_batch``.
A certificate is therefore reproducible person by person. Sharing the positions across persons keeps
every person's n samples i.i.d. uniform (the only thing the certificate needs), as the reference code's
``reuse_noise`` option does.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from emotic_mm.batching import rows_per_forward
from emotic_mm.config import whole_number
from emotic_mm.data.categories import NUM_CATEGORIES
from emotic_mm.errors import ConfigError

DRAW_FLOATS = 1 << 22  # uniforms per position draw (16 MiB): a block of samples, sized only by d
MASK_BOOLS = 1 << 26  # kept-pixel masks held at once by the vote sampler (64 MiB)


def ablation_channels(colour_channels: int = 3) -> int:
    """Input channels of an ablated view: two per colour channel (``x``, ``1 − x``)."""
    return 2 * int(colour_channels)


def check_keep(keep: Any, height: int, width: int, where: str = "the picture the encoder sees") -> int:
    """``keep`` as an int within ``1 .. height·width``, or one line naming ``defense.keep``."""
    d = int(height) * int(width)
    keep = whole_number(keep, "defense.keep", 1)
    if keep > d:
        raise ConfigError(f"defense.keep={keep} exceeds the {d} pixels of {where} ({height}x{width})")
    return int(keep)


def _draw_block(d: int) -> int:
    return max(1, DRAW_FLOATS // max(int(d), 1))


def draw_positions(
    count: int,
    d: int,
    keep: int,
    generator: torch.Generator | None = None,
    device: torch.device | str | None = None,
) -> torch.Tensor:
    """(count, keep) kept pixel indices in ``0 .. d-1``: ``count`` independent uniform ``keep``-subsets.

    The top-``keep`` of d i.i.d. uniforms is a uniform random subset. Draws happen on the generator's
    device (or ``device`` without a generator), in blocks of a size fixed by ``d``, so a generator seeded
    the same way always yields the same subsets.
    """
    dev = generator.device if generator is not None else torch.device(device or "cpu")
    block = _draw_block(d)
    parts = []
    for start in range(0, count, block):
        m = min(block, count - start)
        u = torch.rand(m, d, generator=generator, device=dev)
        parts.append(u.topk(keep, dim=1).indices)
    if not parts:
        return torch.empty(0, keep, dtype=torch.long, device=dev)
    return torch.cat(parts)


def keep_mask(positions: torch.Tensor, d: int) -> torch.Tensor:
    """(count, keep) indices → (count, d) boolean mask of kept pixels."""
    mask = torch.zeros(positions.shape[0], d, dtype=torch.bool, device=positions.device)
    return mask.scatter_(1, positions, True)


def encode(pixels: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Pixels (B, C, H, W) in [0, 255] and a kept-pixel mask (B or 1, H·W) → the ablated view (B, 2C, H, W):
    ``x_c`` and ``1 − x_c`` (x = pixel / 255) where kept, ``(0, 0)`` where ablated. Differentiable in
    ``pixels``; values of ablated pixels never reach the output."""
    b, _, h, w = pixels.shape
    m = mask.reshape(mask.shape[0], 1, h, w).to(device=pixels.device, dtype=torch.float32)
    x = pixels.float() / 255.0
    return torch.cat([x * m, (1.0 - x) * m], dim=1)


def ablate(
    pixels: torch.Tensor,
    keep: int,
    generator: torch.Generator | None = None,
    positions: torch.Tensor | None = None,
) -> torch.Tensor:
    """Ablated views (B, 2C, H, W) of pixels (B, C, H, W) in [0, 255]: each image keeps ``keep`` uniformly
    random pixel positions (the same in every colour channel); the rest are absent.

    ``positions`` (B, keep) or (keep,) fixes the kept pixels instead of drawing them (drawn per image from
    ``generator``, or from the pixels' device's default generator when None)."""
    b, _, h, w = pixels.shape
    d = h * w
    check_keep(keep, h, w)
    if positions is None:
        positions = draw_positions(b, d, keep, generator, device=pixels.device)
    positions = positions.reshape(-1, positions.shape[-1]).to(pixels.device)
    return encode(pixels, keep_mask(positions, d))


class RandomAblation(nn.Module):
    """The encoder hook of ``defense=ablation``: pixels (B, C, H, W) in [0, 255] → ablated views
    (B, 2C, H, W) with fresh positions per image from the default generator (the trainer's seed).

    A batch that is already an ablated view (2C channels, as ``sample_votes`` hands to ``classify``)
    passes through unchanged, so the smoothed classifier can choose the positions itself. In eval mode a
    raw picture still gets one random view: a plain forward pass is the base classifier f, not the
    smoothed (certified) classifier, which is :func:`sample_votes`.

    As an :class:`~emotic_mm.defenses.contracts.InputDefense` it widens the backbone's first convolution
    to the ablated view's channels (:meth:`adapt_backbone`).
    """

    name = "ablation"
    deterministic = False  # fresh positions per call

    def __init__(self, keep: int, colour_channels: int = 3) -> None:
        super().__init__()
        self.keep = whole_number(keep, "defense.keep", 1)
        self.colour_channels = int(colour_channels)

    @property
    def out_channels(self) -> int:
        return ablation_channels(self.colour_channels)

    def extra_repr(self) -> str:
        return f"keep={self.keep}"

    def forward(self, pixels: torch.Tensor) -> torch.Tensor:
        if pixels.shape[1] == self.out_channels:
            return pixels
        if pixels.shape[1] != self.colour_channels:
            raise ValueError(
                f"RandomAblation expects {self.colour_channels} colour channels or an ablated view "
                f"of {self.out_channels}, got shape {tuple(pixels.shape)}"
            )
        return ablate(pixels, self.keep)

    def adapt_backbone(
        self, backbone: nn.Module, view_size: int | None, mean: Sequence[float], std: Sequence[float]
    ) -> bool:
        """Check ``keep`` against the working view, then widen ``backbone``'s first convolution to the
        ablated view, initialised from its pretrained weights with the normalisation folded in
        (:func:`adapt_first_conv`): the encoder feeds the encoding unnormalised (True)."""
        if view_size:
            check_keep(self.keep, view_size, view_size)
        adapt_first_conv(backbone, self.colour_channels, mean, std)
        return True


def adapt_first_conv(
    model: nn.Module,
    colour_channels: int = 3,
    mean: Sequence[float] | None = None,
    std: Sequence[float] | None = None,
) -> nn.Conv2d:
    """Replace ``model``'s first ``Conv2d`` taking ``colour_channels`` inputs by one taking the ablated
    view's ``2·colour_channels``, in place; return the new conv.

    Initialisation from the old weights W (which expected ``(x − μ) / σ``, x ∈ [0, 1]; μ = 0, σ = 1 when
    ``mean``/``std`` are None): ``W'[:, c] = W[:, c]·(1 − μ_c)/σ_c`` and ``W'[:, C + c] = −W[:, c]·μ_c/σ_c``.
    On a kept pixel (x, 1 − x) this gives ``W[:, c]·(x − μ_c)/σ_c`` — exactly the old response — and on an
    absent pixel (0, 0) it gives 0, the response to the mean colour. Feed the new conv the unnormalised
    encoding of :func:`encode`.
    """
    target = None
    for name, module in model.named_modules():
        if isinstance(module, nn.Conv2d):
            if module.in_channels != colour_channels:
                raise ConfigError(
                    f"defense=ablation: the first convolution ({name or 'model'}) takes "
                    f"{module.in_channels} channels, not {colour_channels}"
                )
            target = name, module
            break
    if target is None:
        raise ConfigError("defense=ablation: the image backbone has no Conv2d to widen for the ablated view")
    name, old = target
    if not name:
        raise ConfigError(
            "defense=ablation: adapt_first_conv needs a model that contains the conv, not the conv"
        )
    if old.groups != 1:
        raise ConfigError(f"defense=ablation: cannot widen a grouped first convolution ({name})")
    c = colour_channels
    mu = torch.tensor(list(mean) if mean is not None else [0.0] * c, dtype=torch.float32)
    sigma = torch.tensor(list(std) if std is not None else [1.0] * c, dtype=torch.float32)
    if mu.numel() != c or sigma.numel() != c:
        raise ValueError(f"mean/std need {c} values each")
    new = copy.deepcopy(old)  # same class: a timm Conv2dSame keeps its TF "same" padding
    with torch.no_grad():
        w = old.weight
        scale_x = ((1.0 - mu) / sigma).to(w).view(1, c, 1, 1)
        scale_not_x = (-mu / sigma).to(w).view(1, c, 1, 1)
        new.weight = nn.Parameter(
            torch.cat([w * scale_x, w * scale_not_x], dim=1), requires_grad=old.weight.requires_grad
        )
    new.in_channels = 2 * c
    parent_name, _, attr = name.rpartition(".")
    parent = model.get_submodule(parent_name) if parent_name else model
    setattr(parent, attr, new)
    return new


Classify = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


@torch.no_grad()
def sample_votes(
    classify: Classify,
    pixels: torch.Tensor,
    keep: int,
    n: int,
    max_batch: int | None,
    generator: torch.Generator,
    num_classes: int = NUM_CATEGORIES,
    advance: Callable[[int], None] | None = None,
) -> torch.Tensor:
    """Vote counts (B, num_classes) of the base classifier's top-1 over ``n`` ablated samples per image.

    ``pixels`` (B, C, H, W) in [0, 255] is the picture the model sees (the encoder's working view).
    ``classify(ablated, owner)`` gets ablated views (M, 2C, H, W) with M ≤ ``max_batch`` and the person
    index of each row (M,) in ``0 .. B-1``, and returns the top-1 class of each row (M,).
    Sample j uses the same kept positions for every person (drawn from ``generator``; see the module
    docstring), so a person's counts do not depend on the batch it was certified in. ``advance(rows)``,
    when given, hears of every forward pass (a progress bar in ablated views).
    """
    whole_number(n, "defense.samples", 1)
    max_batch = whole_number(rows_per_forward(max_batch, pixels.device, 512), "defense.max_batch", 1)
    b, _, h, w = pixels.shape
    d = h * w
    check_keep(keep, h, w)
    votes = torch.zeros(b, num_classes, dtype=torch.long)
    if b == 0:
        return votes
    # samples per group: whole draw blocks (so the position stream is the one draw_positions(n) gives),
    # enough of them to fill a forward pass of max_batch rows even when few persons are certified at once
    block = _draw_block(d)
    blocks_per_pass = math.ceil(math.ceil(max_batch / b) / block)
    group = block * max(1, min(blocks_per_pass, MASK_BOOLS // (block * d)))
    for start in range(0, n, group):
        m = min(group, n - start)
        mask = keep_mask(draw_positions(m, d, keep, generator), d).to(pixels.device)  # (m, d)
        rows = m * b
        for r0 in range(0, rows, max_batch):
            r = torch.arange(r0, min(rows, r0 + max_batch), device=pixels.device)
            sample, owner = r // b, r % b
            top1 = classify(encode(pixels[owner], mask[sample]), owner)
            top1 = top1.reshape(-1).long().cpu()
            if top1.numel() != r.numel():
                raise ValueError(
                    f"classify returned {top1.numel()} predictions for {r.numel()} ablated views"
                )
            votes.index_put_((owner.cpu(), top1), torch.ones_like(top1), accumulate=True)
            if advance is not None:
                advance(int(r.numel()))
    return votes


@dataclass(frozen=True)
class AblationSettings:
    """``defense=ablation`` (a :class:`~emotic_mm.defenses.contracts.Certifier`): the training hook's
    ``keep`` and the certification's sampling."""

    keep: int = 45
    samples: int = 1000  # n: estimation round (the vote share bounded by Clopper–Pearson)
    selection_samples: int = 100  # n0: selection round (which class to certify)
    alpha: float = 0.05  # the certificate holds with probability >= 1 - alpha per person
    max_batch: int | None = None  # ablated views per forward pass (None: by device, rows_per_forward)
    seed: int = 0  # certification seed (selection and estimation draw from distinct streams)

    def check(self) -> "AblationSettings":
        for key in ("keep", "samples", "selection_samples", "max_batch"):
            if getattr(self, key) is not None or key != "max_batch":
                whole_number(getattr(self, key), f"defense.{key}", 1)
        if not 0.0 < float(self.alpha) < 1.0:
            raise ConfigError(f"defense.alpha={self.alpha!r} must lie strictly between 0 and 1")
        return self

    def encoder_hook(self, colour_channels: int = 3) -> RandomAblation:
        """The base classifier's input defense: a fresh random ablation keeping ``keep`` pixels."""
        return RandomAblation(self.keep, colour_channels)

    def generators(self) -> tuple[torch.Generator, torch.Generator]:
        """(selection, estimation) generators: fixed by ``seed``, independent of each other, so the
        estimation round's positions do not depend on ``selection_samples``."""
        return (
            torch.Generator().manual_seed(2 * int(self.seed)),
            torch.Generator().manual_seed(2 * int(self.seed) + 1),
        )


def ablation_from_config(block: Any) -> AblationSettings:
    """``defense=ablation`` block → checked settings."""
    from emotic_mm.defenses.settings import from_block

    return from_block(AblationSettings, block).check()
