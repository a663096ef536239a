"""The frozen trunk of a partially fine-tuned backbone, split off so that its output can be memoised.

With ``freeze=true, trainable_blocks=N`` only the last N blocks and the head learn; everything before
them is fixed and in eval mode, so its output is a pure function of the picture. Memoising that output
per distinct picture (and its mirror image) leaves each later epoch only the tail's forward and backward
passes to run, which is what makes partial fine-tuning affordable on a CPU.

The split applies the backbone's children in order: the modules before ``blocks``, the frozen blocks
(the trunk), then the trainable blocks and every module after ``blocks`` (the tail). That equals the
backbone's own ``forward`` for timm's convolutional families (EfficientNet, MobileNet, …), not for models
whose forward does more than chain its children (a ViT adds position embeddings). So the split is
checked against ``forward`` on a random picture when it is built, and not used where it differs.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import torch
from torch import nn

log = logging.getLogger(__name__)


@dataclass
class TrunkSplit:
    """``tail(trunk(x)) == backbone(x)`` in eval mode; the trunk holds no trainable parameter."""

    trunk: nn.Sequential
    tail: nn.Sequential


def split_trunk(backbone: nn.Module, trainable: list[nn.Module], probe_size: int = 64) -> TrunkSplit | None:
    """Split ``backbone`` before its first ``trainable`` block; ``None`` when it has no such block or the
    split does not reproduce the backbone's forward (see the module docstring)."""
    stages = getattr(backbone, "blocks", None)
    if not trainable or not isinstance(stages, nn.Sequential):
        return None
    flat = [b for stage in stages for b in (stage if isinstance(stage, nn.Sequential) else [stage])]
    first = next((i for i, block in enumerate(flat) if block is trainable[0]), None)
    if first is None:
        return None
    children = list(backbone.named_children())
    at = [name for name, _ in children].index("blocks")
    split = TrunkSplit(
        trunk=nn.Sequential(*[m for _, m in children[:at]], *flat[:first]),
        tail=nn.Sequential(*flat[first:], *[m for _, m in children[at + 1 :]]),
    )
    return split if _reproduces(backbone, split, probe_size) else None


@torch.no_grad()
def _reproduces(backbone: nn.Module, split: TrunkSplit, size: int) -> bool:
    was = backbone.training
    backbone.eval()
    try:
        x = torch.randn(2, 3, size, size, generator=torch.Generator().manual_seed(0))
        x = x.to(next(backbone.parameters()).device)
        whole = backbone(x).flatten(1)
        parts = split.tail(split.trunk(x)).flatten(1)
        same = whole.shape == parts.shape and torch.allclose(whole, parts, rtol=1e-4, atol=1e-5)
    except RuntimeError:  # a child that cannot take its predecessor's output: not a chain
        same = False
    finally:
        backbone.train(was)
    if not same:
        log.info(
            "%s: its children do not chain to its forward; the frozen trunk is not memoised",
            type(backbone).__name__,
        )
    return same
