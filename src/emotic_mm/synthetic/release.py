"""``data=synthetic``: the synthetic world as a release ``prepare`` converts (the ``Release`` of
:mod:`emotic_mm.data.releases`): generated into ``raw_dir`` once, then read like any release on disk."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from emotic_mm.errors import ConfigError


class SyntheticRelease:
    """``data=synthetic``: a seeded EMOTIC-layout release (:mod:`emotic_mm.synthetic`) generated into
    ``raw_dir``, stamped with its settings (``synthetic.json``) so that the next prepare with the same
    settings reuses it. ``synthetic`` is the generator's settings block (``data.synthetic``)."""

    def __init__(
        self,
        raw_dir: str,
        synthetic: dict[str, Any],
        name: str = "synthetic",
        prepared_dir: str | None = None,
        workers: Any = 2,
        context_size: Any = 224,
        body_size: Any = 128,
    ) -> None:
        self.name, self._raw_dir, self.settings = str(name), raw_dir, dict(synthetic)
        self.seed = self.settings.get("seed")
        self._spec: Any = None

    def check(self, prepared_dir: Path) -> None:
        from emotic_mm.synthetic import SyntheticSpec

        self._spec = SyntheticSpec.from_config(self.settings)
        if self.raw_dir.resolve() == Path(prepared_dir).resolve():
            raise ConfigError(
                f"data.prepared_dir={prepared_dir} is data.raw_dir; the store needs its own folder"
            )

    @property
    def raw_dir(self) -> Path:
        return Path(str(self._raw_dir))

    def manifest(self) -> dict[str, Any]:
        return {"synthetic": self._spec.as_dict()}

    def materialise(self, workers: int, protect: list[Path], overwrite: bool) -> Path:
        """The raw synthetic release for the checked settings; generated (atomically) unless already there.
        A folder that is not a synthetic release of ours is replaced only with ``overwrite``."""
        from emotic_mm.fsutil import atomic_dir, check_replaceable
        from emotic_mm.locks import output_lock
        from emotic_mm.progress import progress_bar
        from emotic_mm.synthetic import generate_raw

        raw_dir, spec = self.raw_dir, self._spec
        if _stamp(raw_dir) == spec.as_dict():
            return raw_dir
        with output_lock(raw_dir, "data.raw_dir"):  # another prepare may be drawing the same release
            if _stamp(raw_dir) == spec.as_dict():
                return raw_dir
            check_replaceable(
                raw_dir,
                key="data.raw_dir",
                ours=lambda p: _stamp(p) is not None,
                what_ours="a synthetic release written by prepare (no synthetic.json)",
                protect=protect,
                overwrite=overwrite,
            )
            with (
                atomic_dir(raw_dir) as tmp,
                progress_bar("synthetic", total=sum(spec.images.values()), unit="images") as advance,
            ):
                generate_raw(spec, tmp, progress=advance, workers=workers)
        return raw_dir


def _stamp(raw_dir: Path) -> Any:
    """The generator settings a synthetic release was written with (``synthetic.json``), or None."""
    try:
        return json.loads((raw_dir / "synthetic.json").read_text())
    except (OSError, ValueError):
        return None
