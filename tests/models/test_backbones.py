"""Image backbones: name resolution (torchvision / timm), the shipped EfficientNet-Lite weights and their key
map, the fixed encoder's feature memo, and what a checkpoint stores of a frozen pretrained backbone."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from emotic_mm.errors import ConfigError
from emotic_mm.models.backbones import (
    SHIPPED_WEIGHTS,
    block_positions,
    build_backbone,
    efficientnet_pytorch_to_timm,
    load_state_file,
    load_strict,
    resolve_library,
    shipped_file,
    shipped_state,
)
from emotic_mm.models.encoders import ImageEncoder

LITE0 = "tf_efficientnet_lite0"
SHIPPED = "shipped:efficientnet-lite0"
CAT_CLASSES = range(281, 286)  # ImageNet's tabby, tiger cat, Persian, Siamese, Egyptian cat
ESPRESSO = 967
EGYPTIAN_CAT = 285


def _one_line(error: pytest.ExceptionInfo) -> str:
    message = str(error.value)
    assert "\n" not in message
    return message


def test_a_name_resolves_to_one_library():
    assert resolve_library("resnet18") == ("torchvision", "resnet18")  # both have it: torchvision's
    assert resolve_library("timm:resnet18") == ("timm", "resnet18")
    assert resolve_library("torchvision:efficientnet_b0") == ("torchvision", "efficientnet_b0")
    assert resolve_library(LITE0) == ("timm", LITE0)  # timm's only
    with pytest.raises(ConfigError) as info:
        resolve_library("no_such_net")
    assert _one_line(info).startswith(
        "model.image_encoder.name='no_such_net' is neither a torchvision nor a timm"
    )


@pytest.mark.parametrize("lite", sorted(SHIPPED_WEIGHTS))
def test_the_key_map_uses_every_shipped_tensor_and_fills_every_timm_key(lite):
    import timm

    arch = SHIPPED_WEIGHTS[lite][1]
    model = timm.create_model(arch)
    raw = load_state_file(shipped_file(f"shipped:{lite}"))
    renamed = efficientnet_pytorch_to_timm(raw, block_positions(model), "x")
    assert len(renamed) == len(raw)  # no two names onto one
    assert set(renamed) == set(model.state_dict())
    load_strict(model, renamed, "x", arch)  # every shape checked


def test_a_renamed_reshaped_or_unknown_key_is_one_line(tmp_path):
    import timm

    model = timm.create_model(LITE0)
    state = shipped_state(SHIPPED, model, LITE0)
    renamed = {("conv_stem.kernel" if k == "conv_stem.weight" else k): v for k, v in state.items()}
    with pytest.raises(ConfigError) as info:
        load_strict(model, renamed, "f.pth", LITE0)
    assert "1 missing (conv_stem.weight)" in _one_line(info) and "1 unexpected (conv_stem.kernel)" in str(
        info.value
    )
    reshaped = {**state, "classifier.weight": torch.zeros(10, 1280)}
    with pytest.raises(ConfigError, match=r"1 of another shape \(classifier.weight\)"):
        load_strict(model, reshaped, "f.pth", LITE0)
    raw = load_state_file(shipped_file(SHIPPED))
    with pytest.raises(ConfigError) as info:
        efficientnet_pytorch_to_timm(
            {**raw, "_blocks.3._squeeze.weight": torch.zeros(1)}, block_positions(model), "f.pth"
        )
    assert "1 keys of no EfficientNet-PyTorch block or layer (_blocks.3._squeeze.weight)" in _one_line(info)
    with pytest.raises(ConfigError) as info:  # a block beyond the architecture's
        efficientnet_pytorch_to_timm(raw, block_positions(model)[:-1], "f.pth")
    assert "_blocks.15." in _one_line(info)
    # a local file in the EfficientNet-PyTorch naming is refused for timm's model, naming the file
    path = tmp_path / "lite0.pth"
    torch.save(raw, path)
    with pytest.raises(ConfigError) as info:
        ImageEncoder(LITE0, weights=str(path))
    assert str(path) in _one_line(info) and "does not fit timm tf_efficientnet_lite0" in str(info.value)


def test_wrong_shipped_combinations_are_one_line():
    with pytest.raises(ConfigError) as info:
        build_backbone("tf_efficientnet_lite1", SHIPPED)
    assert "holds tf_efficientnet_lite0 weights" in _one_line(info)
    with pytest.raises(ConfigError) as info:
        build_backbone("resnet18", SHIPPED)
    assert "for timm backbones" in _one_line(info)
    with pytest.raises(ConfigError) as info:
        build_backbone(LITE0, "shipped:efficientnet-b7")
    assert "unknown; shipped weights are" in _one_line(info)
    with pytest.raises(ConfigError) as info:  # never a download: only the local cache is looked at
        build_backbone(LITE0, "timm:in1k")
    assert "not in the local Hugging Face cache" in _one_line(info)


def _imagenet_scores(encoder: ImageEncoder, picture: np.ndarray) -> torch.Tensor:
    """The shipped ImageNet head applied to the encoder's own features: resize, normalisation and
    padding are the encoder's."""
    raw = load_state_file(shipped_file(SHIPPED))
    pixels = torch.from_numpy(picture).permute(2, 0, 1)[None].float()
    with torch.no_grad():
        return (encoder(pixels) @ raw["_fc.weight"].t() + raw["_fc.bias"]).softmax(-1)[0]


def test_the_shipped_lite0_sees_a_cat_and_an_espresso():
    """Fails if the weights, the TF "same" padding or the normalisation are wrong: the probabilities are
    pinned to what the TF release's preprocessing (mean = std = 0.5) gives; ImageNet's mean/std give
    0.72 and 0.78, raw pixels neither a cat nor an espresso."""
    from skimage import data

    encoder = ImageEncoder(LITE0, weights=SHIPPED, input_size=224, freeze=True, memo_size=0).eval()
    cat, coffee = _imagenet_scores(encoder, data.chelsea()), _imagenet_scores(encoder, data.coffee())
    assert int(cat.argmax()) == EGYPTIAN_CAT and abs(float(cat[EGYPTIAN_CAT]) - 0.790) < 0.03
    assert int(coffee.argmax()) == ESPRESSO and abs(float(coffee[ESPRESSO]) - 0.882) < 0.03
    encoder.mean.fill_(0.0)  # no normalisation at all
    encoder.std.fill_(1.0)
    assert int(_imagenet_scores(encoder, data.chelsea()).argmax()) not in CAT_CLASSES


def test_a_fixed_encoder_memoises_features_and_keeps_pixel_gradients():
    encoder = ImageEncoder(LITE0, weights=SHIPPED, input_size=32, freeze=True)
    encoder.train()
    assert not encoder.backbone.training and encoder.fixed
    x = torch.rand(3, 3, 40, 40) * 255
    first = encoder(x)
    assert len(encoder.memo) == 3
    assert torch.equal(encoder(x[[2, 0]]), first[[2, 0]]) and len(encoder.memo) == 3
    needs = x.clone().requires_grad_(True)  # feature collision asks for d features / d pixels
    encoder(needs).sum().backward()
    assert needs.grad is not None and needs.grad.abs().sum() > 0
    partial = ImageEncoder(LITE0, weights=SHIPPED, input_size=32, freeze=True, trainable_blocks=2)
    learns = {n.split(".")[0] for n, p in partial.backbone.named_parameters() if p.requires_grad}
    assert learns == {"blocks", "conv_head", "bn2"} and not partial.fixed
    assert partial(x).shape == (3, 1280) and len(partial.memo) == 3  # the frozen trunk's output
    with pytest.raises(
        ConfigError, match=r"^model.image_encoder.trainable_blocks=2: resnet18 has no timm-style"
    ):
        ImageEncoder("resnet18", freeze=True, trainable_blocks=2)


def test_ablation_widens_the_lite0_stem_and_keeps_its_response():
    """The widened stem keeps TF "same" padding; on a fully kept picture it answers as the plain encoder."""
    from emotic_mm.defenses.ablation import encode

    plain = ImageEncoder(LITE0, weights=SHIPPED, input_size=32, freeze=True).eval()
    widened = ImageEncoder(LITE0, weights=SHIPPED, input_size=32, freeze=True).eval()
    from emotic_mm.defenses.ablation import adapt_first_conv

    conv = adapt_first_conv(widened.backbone, 3, widened.pixel_mean, widened.pixel_std)
    assert conv.in_channels == 6 and type(conv).__name__ == type(plain.backbone.conv_stem).__name__
    x = torch.rand(2, 3, 32, 32) * 255
    kept = encode(x, torch.ones(2, 1, 32, 32, dtype=torch.bool))
    with torch.no_grad():
        assert torch.allclose(widened.backbone(kept), plain.backbone((x - plain.mean) / plain.std), atol=1e-4)


def test_a_checkpoint_names_the_frozen_backbone_instead_of_storing_it(tiny, tmp_path):
    """The default's fixed shipped backbone is rebuilt from ``shipped:efficientnet-lite0`` on load; a
    backbone that learns (``trainable_blocks``) is stored whole."""
    import json

    from safetensors import safe_open

    from emotic_mm.models.loading import load_model
    from support.checkpoints import train_tiny

    def stored_keys(path):
        with safe_open(str(path / "model.safetensors"), "pt") as f:
            return set(f.keys())

    fixed = tiny.checkpoint
    meta = json.loads((fixed / "meta.json").read_text())
    assert meta["rebuilt_from"]["image_encoders.context.backbone."] == SHIPPED
    assert not any(".backbone." in k for k in stored_keys(fixed))
    assert load_model(fixed)[0].image_encoders["body"].rebuilt_from == SHIPPED
    partial = train_tiny(
        tiny.store,
        tmp_path / "partial",
        "baseline",
        ["model.modalities=[body]", "model.image_encoder.trainable_blocks=1"],
    )
    assert "image_encoders.body.backbone.blocks.6.0.conv_pw.weight" in stored_keys(partial)
    assert json.loads((partial / "meta.json").read_text())["rebuilt_from"] == {}


@pytest.mark.slow  # CLI round trip
def test_train_eval_attack_round_trip_with_the_shipped_backbone(tiny, tmp_path):
    """The CLI on the default image encoder: eval and a few-pixel attack of the tiny checkpoint."""
    import json

    from support import run_cli

    proc = run_cli(
        [
            "eval",
            f"checkpoint={tiny.checkpoint}",
            "split=test",
            f"data.prepared_dir={tiny.store}",
            f"hydra.run.dir={tmp_path / 'eval'}",
        ],
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    metrics = json.loads((tmp_path / "eval" / "metrics.json").read_text())
    assert metrics["top1_distinct"] >= 1 and 0 <= metrics["top1_majority_share"] <= 1
    proc = run_cli(
        [
            "attack",
            f"checkpoint={tiny.checkpoint}",
            "attack.persons=4",
            "attack.budget=40",
            "attack.population=10",
            "attack.pixels=3",
            "attack.algorithm=rs",
            "attack.resolution=model",
            f"data.prepared_dir={tiny.store}",
            f"hydra.run.dir={tmp_path / 'attack'}",
        ],
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    summary = json.loads((tmp_path / "attack" / "summary.json").read_text())
    assert summary["model"] == "baseline" and summary["persons"] == 4


def test_partial_fine_tuning_memoises_the_frozen_trunk_exactly():
    """With trainable_blocks the trunk's output is memoised: the features equal the backbone's own forward,
    a second pass does not run the trunk, and the tail (only the tail) receives gradients."""
    partial = ImageEncoder(LITE0, weights=SHIPPED, input_size=32, freeze=True, trainable_blocks=2).train()
    assert partial.trunk_split is not None and partial.memoises
    assert not any(p.requires_grad for p in partial.trunk_split.trunk.parameters())
    x = torch.rand(4, 3, 40, 40) * 255
    with torch.no_grad():
        partial.eval()
        torch.testing.assert_close(partial(x), partial._encode(x), rtol=1e-4, atol=1e-5)
        partial.train()
    trunk = partial.trunk_split.trunk
    partial.trunk_split.trunk = None  # a trunk pass now fails: the second epoch must read the memo
    loss = partial(x).square().mean()
    loss.backward()
    partial.trunk_split.trunk = trunk
    tail_grads = [p.grad for p in partial.trunk_split.tail.parameters() if p.requires_grad]
    assert tail_grads and all(g is not None for g in tail_grads)
    assert all(p.grad is None for p in trunk.parameters())
