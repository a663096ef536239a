"""BatchNorm folding of fixed backbones: same features, rebuilt when the weights change, never saved."""

from __future__ import annotations

import pytest
import torch

from emotic_mm.models.encoders import ImageEncoder
from emotic_mm.models.folding import checked_fold, fold_batchnorm


def _randomised_bn(module: torch.nn.Module, seed: int = 0) -> None:
    """Non-trivial running statistics, so a wrong fold cannot pass by accident."""
    gen = torch.Generator().manual_seed(seed)
    for m in module.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.copy_(torch.randn(m.num_features, generator=gen) * 0.1)
            m.running_var.copy_(torch.rand(m.num_features, generator=gen) + 0.5)
            m.weight.data.copy_(torch.rand(m.num_features, generator=gen) + 0.5)
            m.bias.data.copy_(torch.randn(m.num_features, generator=gen) * 0.1)


@pytest.mark.parametrize("name", ["tf_efficientnet_lite0", "resnet18"])
@pytest.mark.parametrize("channels_last", [False, True])
def test_fixed_encoder_runs_folded_with_the_same_features(name: str, channels_last: bool) -> None:
    encoder = ImageEncoder(
        name=name, weights=None, input_size=64, freeze=True, channels_last=channels_last, memo_size=0
    )
    _randomised_bn(encoder.backbone)
    encoder.train()  # a frozen backbone stays in eval mode while the rest trains
    pixels = torch.randint(0, 256, (3, 3, 64, 64)).float()
    with torch.enable_grad():  # gradients asked for: the backbone itself runs
        plain = encoder._encode(pixels)
    with torch.no_grad():
        folded = encoder._encode(pixels)
    copy = encoder.__dict__["_folded"][1]
    assert copy is not encoder.backbone
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in copy.modules())
    torch.testing.assert_close(folded, plain, rtol=1e-4, atol=1e-4 * float(plain.abs().max()))
    assert all(not k.startswith("_folded") for k in encoder.state_dict())  # never saved


def test_changed_weights_rebuild_the_folded_copy() -> None:
    encoder = ImageEncoder(name="resnet18", weights=None, input_size=32, freeze=True, memo_size=0).train()
    pixels = torch.randint(0, 256, (2, 3, 32, 32)).float()
    with torch.no_grad():
        before = encoder._encode(pixels)
        encoder.backbone.load_state_dict(
            {k: v * 1.5 if v.is_floating_point() else v for k, v in encoder.backbone.state_dict().items()}
        )
        after = encoder._encode(pixels)
    with torch.enable_grad():
        plain = encoder._encode(pixels)
    assert not torch.allclose(before, after)
    torch.testing.assert_close(after, plain, rtol=1e-4, atol=1e-4 * float(plain.abs().max()))


def test_a_fold_that_changes_the_function_is_refused() -> None:
    # a BatchNorm that is not applied right after the convolution it follows in registration order
    class Shuffled(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.conv = torch.nn.Conv2d(3, 4, 3)
            self.bn = torch.nn.BatchNorm2d(4)
            self.act = torch.nn.ReLU()

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.bn(self.act(self.conv(x)))  # activation first: folding is not exact

    model = Shuffled().eval()
    _randomised_bn(model)
    assert fold_batchnorm(model)[1] == 1
    assert checked_fold(model, torch.randn(2, 3, 8, 8)) is model
