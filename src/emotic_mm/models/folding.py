"""Inference copies of fixed backbones with each BatchNorm folded into the convolution before it.

Why: a frozen backbone in eval mode applies a fixed affine map after every convolution. Folding it into
the convolution's weights gives the same function (up to float rounding) with one pass over the
activations fewer per layer, which counts on a CPU, where the batched attacks and the certification spend
their time in the backbone (images/s folded and unfolded: ``scripts/benchmarks/bench_inference.py``,
docs/models.md).

``torch.ao.quantization.fuse_modules`` would drop timm's ``BatchNormAct2d`` activation, and torch.fx
cannot trace timm's dynamic "same" padding, so pairs are found by module order (a convolution directly
followed by its BatchNorm among a module's children, as timm and torchvision register them) and every
fold is checked on a probe input: a backbone whose folded copy does not reproduce it is used unfolded.
"""

from __future__ import annotations

import copy
import logging

import torch
from torch import nn
from torch.nn.utils.fusion import fuse_conv_bn_weights

log = logging.getLogger(__name__)

PROBE_TOLERANCE = 1e-3  # relative: the folded copy must reproduce the backbone's features this closely


def _activation_after(bn: nn.BatchNorm2d) -> nn.Module:
    """What remains of a norm layer once its affine map lives in the convolution: timm's BatchNormAct2d
    keeps its dropout and activation, a plain BatchNorm2d becomes the identity."""
    parts = [m for m in (getattr(bn, "drop", None), getattr(bn, "act", None)) if m is not None]
    return nn.Sequential(*parts) if parts else nn.Identity()


def fold_batchnorm(backbone: nn.Module) -> tuple[nn.Module, int]:
    """A copy of ``backbone`` (eval mode) with every (Conv2d, BatchNorm2d) child pair folded; returns the
    copy and the number of pairs folded. The original is left untouched."""
    folded = copy.deepcopy(backbone).eval()
    pairs = 0
    for parent in list(folded.modules()):
        children = list(parent.named_children())
        for (_, conv), (bn_name, bn) in zip(children, children[1:]):
            if (
                isinstance(conv, nn.Conv2d)
                and isinstance(bn, nn.BatchNorm2d)
                and bn.track_running_stats
                and bn.running_mean is not None
                and conv.out_channels == bn.num_features
            ):
                weight, bias = fuse_conv_bn_weights(
                    conv.weight, conv.bias, bn.running_mean, bn.running_var, bn.eps, bn.weight, bn.bias
                )
                conv.weight, conv.bias = weight, bias
                setattr(parent, bn_name, _activation_after(bn))
                pairs += 1
    folded.requires_grad_(False)
    return folded, pairs


@torch.no_grad()
def checked_fold(backbone: nn.Module, probe: torch.Tensor, channels_last: bool = False) -> nn.Module:
    """The folded copy when it reproduces ``backbone`` on ``probe`` within :data:`PROBE_TOLERANCE`
    (relative to the features' scale), else ``backbone`` itself."""
    folded, pairs = fold_batchnorm(backbone)
    if pairs == 0:
        return backbone
    if channels_last:
        folded.to(memory_format=torch.channels_last)
        probe = probe.contiguous(memory_format=torch.channels_last)
    was = backbone.training
    backbone.eval()
    try:
        want, got = backbone(probe), folded(probe)
    finally:
        backbone.train(was)
    error = float((want - got).abs().max() / want.abs().max().clamp_min(1e-6))
    if error > PROBE_TOLERANCE:
        log.warning(
            "BatchNorm folding changed the backbone's features (relative error %.2g); running it unfolded",
            error,
        )
        return backbone
    return folded
