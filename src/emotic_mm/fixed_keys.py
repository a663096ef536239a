"""Overrides a checkpoint makes moot: ``eval checkpoint=<joint run> model=baseline`` scores the joint model,
as it must, and says once which of the user's keys it did not use, instead of ignoring them silently."""

from __future__ import annotations

import logging
from typing import Any

from omegaconf import DictConfig, OmegaConf

log = logging.getLogger(__name__)


def user_overrides() -> list[str] | None:
    """The command line's ``key=value`` overrides under Hydra; ``None`` when called as a library."""
    try:
        from hydra.core.hydra_config import HydraConfig

        return list(HydraConfig.get().overrides.task)
    except (ImportError, ValueError):
        return None


def _touches(override: str, group: str) -> bool:
    """``model=joint``, ``model.embed_dim=64``, ``model/image_encoder=resnet18`` (also with ``+``/``~``)
    touch ``model``."""
    key = override.split("=", 1)[0].lstrip("+~")
    return key == group or key.startswith((f"{group}.", f"{group}/"))


def _differences(a: Any, b: Any, key: str) -> list[str]:
    """Dotted keys whose values differ between two plain containers, as ``key=now (checkpoint: then)``."""
    if isinstance(a, dict) and isinstance(b, dict):
        keys = sorted(set(a) | set(b), key=str)
        return [d for k in keys for d in _differences(a.get(k), b.get(k), f"{key}.{k}")]
    return [] if a == b else [f"{key}={a} (checkpoint: {b})"]


def warn_fixed(
    cfg: DictConfig, saved: DictConfig, checkpoint: Any, group: str = "model", always: bool = False
) -> list[str]:
    """Warn once, naming every ``group`` key of ``cfg`` that differs from the checkpoint's ``saved`` config
    and that the user set (``always``: ``cfg`` has the group only because the user chose one, as in eval).
    Returns the keys named."""
    given = user_overrides()
    touched = always or (given is not None and any(_touches(o, group) for o in given))
    now, then = cfg.get(group), saved.get(group)
    if not touched or not isinstance(now, DictConfig) or not isinstance(then, DictConfig):
        return []
    plain = [OmegaConf.to_container(c, resolve=True) for c in (now, then)]
    diffs = _differences(plain[0], plain[1], group)
    chosen = [d for d in diffs if d.startswith(f"{group}.name=")]
    if chosen:  # another model altogether: name the choice, not each of its keys
        diffs = [f"{group}={now.get('name')} (checkpoint: {then.get('name')}; {len(diffs)} keys differ)"]
    if diffs:
        shown = "; ".join(diffs[:5]) + (f"; ... ({len(diffs)} keys)" if len(diffs) > 5 else "")
        log.warning("checkpoint=%s fixes the %s; ignoring %s", checkpoint, group, shown)
    return diffs
