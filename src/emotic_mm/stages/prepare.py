"""``emotic-mm prepare``: a release folder (or the synthetic default) → a prepared store.

Recipe: check the config → (synthetic only) generate the raw release layout → convert it with the
shared converter → print the summary table → record the run.

``data.prepared_dir`` (and a synthetic ``data.raw_dir``) is written by one prepare at a time (a second
one waits: :func:`emotic_mm.locks.output_lock`), and replaced only when it is a folder this
project wrote, an empty folder, or nothing; anything else needs ``overwrite=true``, and the release, its
descriptions file or a folder holding them is never replaced (:func:`emotic_mm.fsutil.check_replaceable`).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf

from emotic_mm.data.convert import ConvertOptions, check_out_dir, check_view_sizes, convert_release
from emotic_mm.data.emotic_mat import SKIP_REASONS
from emotic_mm.synthetic import SyntheticSpec, generate_raw
from emotic_mm.errors import ConfigError
from emotic_mm.fsutil import atomic_dir, check_replaceable, write_json_atomic
from emotic_mm.locks import output_lock
from emotic_mm.progress import print_table, progress_bar
from emotic_mm.runinfo import output_dir, record_run


def _required(cfg: DictConfig, key: str, hint: str) -> Any:
    if OmegaConf.select(cfg, key, default=None) is None or OmegaConf.is_missing(cfg, key):
        raise ConfigError(f"{key} is not set: {hint}")
    return OmegaConf.select(cfg, key)


def _stamp(raw_dir: Path) -> Any:
    """The generator settings a synthetic release was written with (``synthetic.json``), or None."""
    try:
        return json.loads((raw_dir / "synthetic.json").read_text())
    except (OSError, ValueError):
        return None


def synthetic_raw(cfg: DictConfig, spec: SyntheticSpec, workers: int, protect: list[Path]) -> Path:
    """The raw synthetic release for ``spec``; generated (atomically) unless already there.
    A folder that is not a synthetic release of ours is replaced only with ``overwrite=true``."""
    raw_dir = Path(str(cfg.data.raw_dir))
    if _stamp(raw_dir) == spec.as_dict():
        return raw_dir
    with output_lock(raw_dir, "data.raw_dir"):  # another prepare may be drawing the same release
        if _stamp(raw_dir) == spec.as_dict():
            return raw_dir
        check_replaceable(raw_dir, key="data.raw_dir", ours=lambda p: _stamp(p) is not None,
                          what_ours="a synthetic release written by prepare (no synthetic.json)",
                          protect=protect, overwrite=cfg.get("overwrite", False))
        with atomic_dir(raw_dir) as tmp, \
                progress_bar("synthetic", total=sum(spec.images.values()), unit="images") as advance:
            generate_raw(spec, tmp, progress=advance, workers=workers)
    return raw_dir


def prepare(cfg: DictConfig) -> dict[str, Any]:
    """Write the store named by ``data.prepared_dir`` and return its manifest."""
    prepared_dir = Path(str(_required(cfg, "data.prepared_dir", "name the folder the store is written to")))
    workers = cfg.data.get("workers", 2)
    if not isinstance(workers, int) or isinstance(workers, bool) or workers < 0:
        raise ConfigError(f"data.workers={workers!r} must be a whole number >= 0 (0 decodes in the main process)")
    context_size, body_size = check_view_sizes(cfg.data.context_size, cfg.data.body_size)
    protect = [Path.cwd(), output_dir()]  # the run dir and where the user stands are never replaced
    if cfg.text.source == "file":
        _required(cfg, "text.path", "pass text.path=descriptions.csv|.jsonl, or use text=template")
    synthetic = cfg.data.name == "synthetic"
    spec = SyntheticSpec.from_config(cfg.data.synthetic) if synthetic else None
    if synthetic and Path(str(cfg.data.raw_dir)).resolve() == prepared_dir.resolve():
        raise ConfigError(f"data.prepared_dir={prepared_dir} is data.raw_dir; the store needs its own folder")
    raw_dir = Path(str(cfg.data.raw_dir)) if synthetic else \
        Path(str(_required(cfg, "data.raw_dir", "pass data.raw_dir=/path/to/emotic (the release root)")))
    opts = ConvertOptions(
        raw_dir=raw_dir,
        out_dir=prepared_dir,
        text_cfg=cfg.text,
        tokenizer_name=str(cfg.tokenizer.name),
        max_length=int(cfg.tokenizer.max_length),
        workers=workers,
        context_size=context_size,
        body_size=body_size,
        extra_manifest={"dataset": str(cfg.data.name), **({"synthetic": spec.as_dict()} if synthetic else {}),
                        "config": OmegaConf.to_container(cfg, resolve=True)},
        overwrite=cfg.get("overwrite", False),
        protect=protect,
    )
    with output_lock(prepared_dir, "data.prepared_dir"):  # a second prepare into it waits, named
        check_out_dir(opts)  # before anything is generated: a folder we may not replace stops the run here
        if synthetic:
            synthetic_raw(cfg, spec, workers, protect=[*protect, prepared_dir])
        manifest = convert_release(opts)
    print_summary(manifest, prepared_dir)
    return manifest


def print_summary(manifest: dict[str, Any], prepared_dir: Path) -> None:
    reasons = [r for r in SKIP_REASONS if any(s["skipped"].get(r) for s in manifest["splits"].values())]
    rows = [[split, info["persons"], info["kept"], *(info["skipped"].get(r, 0) for r in reasons)]
            for split, info in manifest["splits"].items()]
    print_table(f"prepared store: {prepared_dir}", ["split", "persons", "kept", *reasons], rows)


def main(cfg: DictConfig) -> dict[str, Any]:
    """Hydra entry point: record the run, prepare, keep the manifest in the run dir."""
    seed = cfg.data.synthetic.seed if cfg.data.name == "synthetic" else None
    record_run("prepare", cfg, seed)
    manifest = prepare(cfg)
    write_json_atomic(output_dir() / "prepare.json", {k: manifest[k] for k in ("splits", "tokenizer", "seconds")})
    return manifest
