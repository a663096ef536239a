"""A defense's config block → its settings dataclass: the one reader every defense uses, so a key left
out (or null) always means the dataclass's default."""

from __future__ import annotations

from dataclasses import fields
from typing import Any, TypeVar

T = TypeVar("T")


def setting(block: Any, key: str, default: Any) -> Any:
    """``block[key]``, or ``default`` when absent or null (a DictConfig, a dict or an object)."""
    value = block.get(key, default) if hasattr(block, "get") else getattr(block, key, default)
    return default if value is None else value


def from_block(cls: type[T], block: Any) -> T:
    """``cls`` built from the block's keys that are its fields (others, like ``name``, are ignored)."""
    defaults = cls()
    return cls(**{f.name: setting(block, f.name, getattr(defaults, f.name)) for f in fields(cls)})
