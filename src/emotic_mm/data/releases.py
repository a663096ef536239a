"""The datasets ``prepare`` converts: one class per kind of raw release, built from the ``data`` config
block by its ``_target_`` (Hydra ``instantiate``, like models). Both end as a release folder in the EMOTIC
layout that the one converter reads; a release differs only in where that folder comes from.

* :class:`EmoticRelease` (``data=emotic``) — a release already on disk at ``raw_dir``.
* ``emotic_mm.synthetic.release.SyntheticRelease`` (``data=synthetic``) — a seeded release generated into
  ``raw_dir`` first (kept, and reused while its settings stay the same).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Protocol

from omegaconf import DictConfig, OmegaConf

from emotic_mm.errors import ConfigError

# the _target_ of a data block without one, by its name; every other name is read as a release on disk
NAME_TARGETS = {"synthetic": "emotic_mm.synthetic.release.SyntheticRelease"}
DEFAULT_TARGET = "emotic_mm.data.releases.EmoticRelease"


class Release(Protocol):
    """What ``prepare`` asks of a dataset, in this order: ``check``, ``raw_dir``, ``manifest``, then
    ``materialise`` (under the store's lock, once the store folder may be replaced)."""

    name: str            # recorded as the store's ``dataset``
    seed: int | None     # recorded with the run (a generated release's seed)

    def check(self, prepared_dir: Path) -> None:
        """Every setting, each problem one line, before anything is written."""
        ...

    @property
    def raw_dir(self) -> Path: ...

    def manifest(self) -> dict[str, Any]:
        """What the store's manifest records about the release, besides its name."""
        ...

    def materialise(self, workers: int, protect: list[Path], overwrite: bool) -> Path:
        """The release folder on disk (written first, by ``workers`` processes, when the release is
        generated); never replaces the ``protect`` folders, and a folder not of ours only with
        ``overwrite``."""
        ...


def make_release(data_cfg: Any) -> Release:
    """The ``data`` block's release: its ``_target_`` called with the block's keys. An unset key (``???``)
    arrives as None, so that the release's ``check`` names it in one line."""
    from emotic_mm.config import instantiate_config

    block = _unset_as_none(OmegaConf.to_container(data_cfg, resolve=True, throw_on_missing=False)
                           if isinstance(data_cfg, DictConfig) else dict(data_cfg))
    block.setdefault("_target_", NAME_TARGETS.get(str(block.get("name")), DEFAULT_TARGET))
    return instantiate_config(OmegaConf.create(block), "data")


def _unset_as_none(node: Any) -> Any:
    if isinstance(node, dict):
        return {k: _unset_as_none(v) for k, v in node.items()}
    return None if node == "???" else node


class EmoticRelease:
    """``data=emotic``: the EMOTIC release at ``raw_dir`` (Annotations/Annotations.mat and
    emotic/<folder>/<file>). ``prepared_dir``, ``workers`` and the view sizes are ``prepare``'s own keys."""

    seed = None

    def __init__(self, raw_dir: str | None = None, name: str = "emotic", prepared_dir: str | None = None,
                 workers: Any = 4, context_size: Any = 224, body_size: Any = 128) -> None:
        self.name, self._raw_dir = str(name), raw_dir

    def check(self, prepared_dir: Path) -> None:
        if self._raw_dir is None:
            raise ConfigError("data.raw_dir is not set: pass data.raw_dir=/path/to/emotic (the release root)")

    @property
    def raw_dir(self) -> Path:
        return Path(str(self._raw_dir))

    def manifest(self) -> dict[str, Any]:
        return {}

    def materialise(self, workers: int, protect: list[Path], overwrite: bool) -> Path:
        return self.raw_dir
