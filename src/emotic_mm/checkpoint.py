"""Checkpoints as folders: safetensors weights, the resolved config, and JSON — never pickles.

``<run>/best`` and ``<run>/last`` each hold:
  model.safetensors        weights (frozen pretrained encoders are omitted: meta.json's rebuilt_from names
                           the weights that rebuild them, e.g. shipped:efficientnet-lite0)
  config.yaml              the resolved config the model was built from
  meta.json                epoch, metrics, omitted prefixes, versions
  training_state.safetensors + training_state.json   optimizer/scheduler/RNG state for exact resume
Loading reads tensors with safetensors and everything else as YAML/JSON, so it never executes code;
a truncated or malformed file is one line naming it.
"""

from __future__ import annotations

import json
import os
import random
from pathlib import Path
from typing import Any

import numpy as np
import torch
from omegaconf import DictConfig, OmegaConf
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file
from torch import nn

from emotic_mm.errors import ConfigError, DataFormatError, OutputError
from emotic_mm.fsutil import atomic_dir, write_failure

MODEL_FILE = "model.safetensors"
CONFIG_FILE = "config.yaml"
META_FILE = "meta.json"
STATE_TENSORS = "training_state.safetensors"
STATE_JSON = "training_state.json"
TRUSTED_TARGETS = ("emotic_mm.", "torch.optim.")  # what a checkpoint's _target_ may name
# keys of a checkpoint's config that name where a run reads or writes: never taken from a checkpoint
UNTRUSTED_PATH_KEYS = (
    "paths",
    "hydra",
    "checkpoint",
    "runs",
    "out",
    "input",
    "overwrite",
    "data.raw_dir",
    "text.path",
)


def rebuilt_from(model: nn.Module) -> dict[str, str]:
    """Parameters rebuilt from pretrained weights rather than stored, as {state-dict prefix: the weights
    that rebuild them}: what the model says (``model.omitted_prefixes()``, e.g. CLIP's frozen towers),
    else a frozen text encoder (its name) and each fixed image backbone with named pretrained weights
    (``shipped:…``, ``timm:…``, a torchvision weights name; a local file or a random start is stored)."""
    own = getattr(model, "omitted_prefixes", None)
    if callable(own):
        return {p: "model config" for p in own()}
    found: dict[str, str] = {}
    text = getattr(model, "text_encoder", None)
    if text is not None and getattr(text, "frozen", False):
        found["text_encoder."] = str(getattr(text, "name", "model.text_encoder.name"))
    for view, encoder in getattr(model, "image_encoders", {}).items():
        source = getattr(encoder, "rebuilt_from", None)
        if source:
            found[f"image_encoders.{view}.backbone."] = source
    return found


def omitted_prefixes(model: nn.Module) -> list[str]:
    """The state-dict prefixes a checkpoint leaves out (see :func:`rebuilt_from`)."""
    return list(rebuilt_from(model))


def model_state(model: nn.Module) -> dict[str, torch.Tensor]:
    skip = omitted_prefixes(model)
    return {
        k: v.detach().cpu().contiguous().clone()
        for k, v in model.state_dict().items()
        if not any(k.startswith(p) for p in skip)
    }


def _split_state(obj: Any, prefix: str, tensors: dict[str, torch.Tensor]) -> Any:
    """Replace tensors in a nested structure by references, collecting them into ``tensors``."""
    if isinstance(obj, torch.Tensor):
        key = f"{prefix}"
        tensors[key] = obj.detach().cpu().contiguous().clone()
        return {"__tensor__": key}
    if isinstance(obj, dict):
        return {
            "__dict__": [
                [_split_state(k, f"{prefix}.k{i}", tensors), _split_state(v, f"{prefix}.{i}", tensors)]
                for i, (k, v) in enumerate(obj.items())
            ]
        }
    if isinstance(obj, (list, tuple)):
        return {
            "__list__": [_split_state(v, f"{prefix}.{i}", tensors) for i, v in enumerate(obj)],
            "tuple": isinstance(obj, tuple),
        }
    if isinstance(obj, np.ndarray):
        return {"__ndarray__": obj.tolist(), "dtype": str(obj.dtype)}
    return obj


def _join_state(obj: Any, tensors: dict[str, torch.Tensor]) -> Any:
    if isinstance(obj, dict):
        if "__tensor__" in obj:
            return tensors[obj["__tensor__"]]
        if "__dict__" in obj:
            return {_join_state(k, tensors): _join_state(v, tensors) for k, v in obj["__dict__"]}
        if "__list__" in obj:
            items = [_join_state(v, tensors) for v in obj["__list__"]]
            return tuple(items) if obj.get("tuple") else items
        if "__ndarray__" in obj:
            return np.array(obj["__ndarray__"], dtype=obj["dtype"])
    return obj


def rng_state() -> dict[str, Any]:
    state = {"torch": torch.get_rng_state(), "numpy": np.random.get_state(), "python": random.getstate()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    torch.set_rng_state(state["torch"])
    np.random.set_state(tuple(state["numpy"]))
    py = state["python"]
    random.setstate((py[0], tuple(py[1]), py[2]))
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(list(state["cuda"]))


def save_checkpoint(
    directory: Path,
    model: nn.Module,
    cfg: DictConfig,
    meta: dict[str, Any],
    training_state: dict[str, Any] | None = None,
) -> Path:
    """Write the checkpoint folder atomically (a crash never leaves a half-written ``best``). ``meta`` should
    carry the training store's ``view_sizes``, so a store of other sizes is refused later. A full disk is
    one :class:`OutputError` naming the folder; the previous checkpoint there is left as it was."""
    try:
        with atomic_dir(Path(directory)) as tmp:
            save_file(model_state(model), str(tmp / MODEL_FILE))
            (tmp / CONFIG_FILE).write_text(OmegaConf.to_yaml(cfg, resolve=True))
            full_meta = {
                **meta,
                "omitted_prefixes": omitted_prefixes(model),
                "rebuilt_from": rebuilt_from(model),
                "variant": getattr(model, "variant", None),
            }
            (tmp / META_FILE).write_text(json.dumps(full_meta, indent=2, default=str) + "\n")
            if training_state is not None:
                tensors: dict[str, torch.Tensor] = {}
                structure = _split_state(training_state, "s", tensors)
                save_file(tensors, str(tmp / STATE_TENSORS))
                (tmp / STATE_JSON).write_text(json.dumps(structure))
    except SafetensorError as exc:  # safetensors reports the OS error in its own type
        detail = str(exc).strip().splitlines()[0] if str(exc).strip() else "SafetensorError"
        raise OutputError(f"{directory}: cannot write the checkpoint ({detail})") from None
    except OSError as exc:
        failure = write_failure(exc, Path(directory))
        if failure is None:
            raise
        raise failure from None
    return Path(directory)


def trained_view_sizes(path: Path) -> dict[str, int] | None:
    """``view_sizes`` from a checkpoint's ``meta.json`` (``None`` when its ``meta.json`` has none)."""
    sizes = read_meta(checkpoint_dir(path)).get("view_sizes")
    return {str(k): int(v) for k, v in sizes.items()} if isinstance(sizes, dict) else None


def _tensors(file: Path) -> dict[str, torch.Tensor]:
    """A safetensors file's tensors; a truncated or foreign file is one line naming it."""
    try:
        return load_file(str(file))
    except (SafetensorError, OSError, ValueError) as exc:
        raise DataFormatError(
            f"{file}: not a readable safetensors file ({exc}); the checkpoint is damaged"
        ) from None


def read_meta(path: Path) -> dict[str, Any]:
    file = Path(path) / META_FILE
    if not file.is_file():
        return {}
    try:
        meta = json.loads(file.read_text())
    except (OSError, ValueError) as exc:
        raise DataFormatError(f"{file}: not readable JSON ({exc})") from None
    if not isinstance(meta, dict):
        raise DataFormatError(f"{file}: expected a JSON object")
    return meta


def checkpoint_dir(path: Path) -> Path:
    """Accept the folder itself or its model.safetensors; raise one clear line otherwise."""
    path = Path(path)
    if path.is_file() and path.name == MODEL_FILE:
        path = path.parent
    if not (path / MODEL_FILE).is_file() or not (path / CONFIG_FILE).is_file():
        raise DataFormatError(f"{path}: not a checkpoint folder (expected {MODEL_FILE} and {CONFIG_FILE})")
    return path


def load_config(path: Path) -> DictConfig:
    """The resolved config a checkpoint was trained with; one line when it is not a config of ours."""
    import yaml
    from omegaconf.errors import OmegaConfBaseException

    file = checkpoint_dir(path) / CONFIG_FILE
    try:
        cfg = OmegaConf.load(file)
    except (yaml.YAMLError, OmegaConfBaseException, OSError, ValueError, TypeError) as exc:
        raise DataFormatError(
            f"{file}: not a readable config ({type(exc).__name__}: {exc})".replace("\n", " ")
        ) from None
    model = cfg.get("model") if isinstance(cfg, DictConfig) else None
    if not isinstance(model, DictConfig) or "name" not in model or "modalities" not in model:
        raise DataFormatError(
            f"{file}: not a training config (expected a model block with name and modalities)"
        )
    return untrusted(cfg, file)  # type: ignore[arg-type]


def trusted_targets() -> tuple[str, ...]:
    """Module prefixes a checkpoint's ``_target_`` may name: this package and torch's optimizers and
    schedulers, plus those a user lists in ``EMOTIC_MM_TRUSTED_TARGETS`` (comma-separated) for their own
    builders."""
    extra = [t.strip() for t in os.environ.get("EMOTIC_MM_TRUSTED_TARGETS", "").split(",") if t.strip()]
    return (*TRUSTED_TARGETS, *extra)


def _leaves(node: Any, key: str = "") -> list[tuple[str, Any]]:
    """Every (dotted key, value) at the leaves of a plain container."""
    if isinstance(node, dict):
        return [leaf for k, v in node.items() for leaf in _leaves(v, f"{key}.{k}" if key else str(k))]
    if isinstance(node, list):
        return [leaf for i, v in enumerate(node) for leaf in _leaves(v, f"{key}[{i}]")]
    return [(key, node)]


def untrusted(cfg: DictConfig, file: Path) -> DictConfig:
    """A checkpoint's config as a stage may use it: whoever shared the checkpoint wrote it.

    Code: every ``_target_`` must name a builder of :func:`trusted_targets` (one line naming the key
    otherwise), since building the model, optimizer, scheduler or loss calls it; no value may be an
    interpolation (a saved config is resolved; ``${oc.env:...}`` would read the environment). Files: the
    keys that name where a run reads or writes (``paths``, ``hydra``, ``checkpoint``, ``data.raw_dir``,
    ``text.path``, ``trainer.resume``, ...) are dropped, so only the current command's values name them.
    The model folders a model is rebuilt from (``model.*.name``, image weights) are read, never run.
    """
    prefixes = trusted_targets()
    for key, value in _leaves(OmegaConf.to_container(cfg, resolve=False)):
        if isinstance(value, str) and "${" in value:  # e.g. ${oc.env:...} would copy a secret into outputs
            raise DataFormatError(
                f"{file}: {key}={value!r} is an interpolation; a checkpoint's config is "
                f"saved resolved, so this one was written by hand"
            )
        if key.rpartition(".")[2] == "_target_" and not str(value).startswith(prefixes):
            raise DataFormatError(
                f"{file}: {key}={value} is not a builder of emotic-mm or torch.optim, and "
                f"a checkpoint's config never names code to run (a builder of your own: "
                f"list its module in EMOTIC_MM_TRUSTED_TARGETS)"
            )
    for key in UNTRUSTED_PATH_KEYS:
        parent, _, leaf = key.rpartition(".")
        node = OmegaConf.select(cfg, parent) if parent else cfg
        if isinstance(node, DictConfig) and leaf in node:
            node.pop(leaf)
    if isinstance(cfg.get("trainer"), DictConfig) and "resume" in cfg.trainer:
        cfg.trainer.resume = False
    return cfg


def load_weights(model: nn.Module, path: Path) -> dict[str, Any]:
    """Load weights into ``model``; a checkpoint of another architecture is a clear error."""
    path = checkpoint_dir(path)
    meta = read_meta(path)
    state = _tensors(path / MODEL_FILE)
    expected = model_state(model)  # what a checkpoint of this model must hold
    known = model.state_dict()  # ... and may hold: a rebuilt part stored anyway loads too
    missing = sorted(set(expected) - set(state))
    unexpected = sorted(set(state) - set(known))
    wrong = sorted(k for k in set(state) & set(known) if state[k].shape != known[k].shape)
    if missing or unexpected or wrong:
        detail = "; ".join(
            f"{n}: {', '.join(v[:3])}{' ...' if len(v) > 3 else ''}"
            for n, v in (("missing", missing), ("unexpected", unexpected), ("shape mismatch", wrong))
            if v
        )
        raise ConfigError(
            f"{path}: checkpoint does not fit model {getattr(model, 'variant', '?')} "
            f"(saved for {meta.get('variant', '?')}); {detail}"
        )
    model.load_state_dict(state, strict=False)
    return meta


def load_training_state(path: Path) -> dict[str, Any]:
    path = checkpoint_dir(path)
    if not (path / STATE_JSON).is_file():
        raise DataFormatError(f"{path}: no training state to resume from ({STATE_JSON} missing)")
    tensors = _tensors(path / STATE_TENSORS)
    try:
        structure = json.loads((path / STATE_JSON).read_text())
    except (OSError, ValueError) as exc:
        raise DataFormatError(f"{path / STATE_JSON}: not readable JSON ({exc})") from None
    try:
        return _join_state(structure, tensors)
    except (KeyError, TypeError, ValueError) as exc:
        raise DataFormatError(f"{path / STATE_JSON}: does not match {STATE_TENSORS} ({exc!r})") from None
