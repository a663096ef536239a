"""The datasets ``prepare`` converts: one class per kind of raw release, built from the ``data`` config
block by its ``_target_`` (Hydra ``instantiate``, like models). Both end as a release folder in the EMOTIC
layout that the one converter reads; a release differs only in where that folder comes from.

* :class:`EmoticRelease` (``data=emotic``) — a release already on disk at ``raw_dir``.
* :class:`SyntheticRelease` (``data=synthetic``) — a seeded release generated into ``raw_dir`` first
  (kept, and reused while its settings stay the same).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Protocol

from omegaconf import DictConfig, OmegaConf

from emotic_mm.errors import ConfigError

# the _target_ of a data block without one (a config written before data blocks had one), by its name;
# every other name was read as a release on disk
NAME_TARGETS = {"synthetic": "emotic_mm.data.releases.SyntheticRelease"}
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


class SyntheticRelease:
    """``data=synthetic``: a seeded EMOTIC-layout release (:mod:`emotic_mm.data.synthetic`) generated into
    ``raw_dir``, stamped with its settings (``synthetic.json``) so that the next prepare with the same
    settings reuses it. ``synthetic`` is the generator's settings block (``data.synthetic``)."""

    def __init__(self, raw_dir: str, synthetic: dict[str, Any], name: str = "synthetic",
                 prepared_dir: str | None = None, workers: Any = 2, context_size: Any = 224,
                 body_size: Any = 128) -> None:
        self.name, self._raw_dir, self.settings = str(name), raw_dir, dict(synthetic)
        self.seed = self.settings.get("seed")
        self._spec: Any = None

    def check(self, prepared_dir: Path) -> None:
        from emotic_mm.data.synthetic import SyntheticSpec

        self._spec = SyntheticSpec.from_config(self.settings)
        if self.raw_dir.resolve() == Path(prepared_dir).resolve():
            raise ConfigError(f"data.prepared_dir={prepared_dir} is data.raw_dir; "
                              "the store needs its own folder")

    @property
    def raw_dir(self) -> Path:
        return Path(str(self._raw_dir))

    def manifest(self) -> dict[str, Any]:
        return {"synthetic": self._spec.as_dict()}

    def materialise(self, workers: int, protect: list[Path], overwrite: bool) -> Path:
        """The raw synthetic release for the checked settings; generated (atomically) unless already there.
        A folder that is not a synthetic release of ours is replaced only with ``overwrite``."""
        from emotic_mm.data.synthetic import generate_raw
        from emotic_mm.fsutil import atomic_dir, check_replaceable
        from emotic_mm.locks import output_lock
        from emotic_mm.progress import progress_bar

        raw_dir, spec = self.raw_dir, self._spec
        if _stamp(raw_dir) == spec.as_dict():
            return raw_dir
        with output_lock(raw_dir, "data.raw_dir"):  # another prepare may be drawing the same release
            if _stamp(raw_dir) == spec.as_dict():
                return raw_dir
            check_replaceable(raw_dir, key="data.raw_dir", ours=lambda p: _stamp(p) is not None,
                              what_ours="a synthetic release written by prepare (no synthetic.json)",
                              protect=protect, overwrite=overwrite)
            with atomic_dir(raw_dir) as tmp, \
                    progress_bar("synthetic", total=sum(spec.images.values()), unit="images") as advance:
                generate_raw(spec, tmp, progress=advance, workers=workers)
        return raw_dir


def _stamp(raw_dir: Path) -> Any:
    """The generator settings a synthetic release was written with (``synthetic.json``), or None."""
    try:
        return json.loads((raw_dir / "synthetic.json").read_text())
    except (OSError, ValueError):
        return None
