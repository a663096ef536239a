"""``emotic-mm prepare``: a release folder (or the synthetic default) → a prepared store.

Recipe: check the config → the ``data`` block's release (built from its ``_target_``; a synthetic
release is generated first, into its own raw folder) → convert it with the shared converter → print the
summary table → record the run.

``data.prepared_dir`` (and a synthetic ``data.raw_dir``) is written by one prepare at a time (a second
one waits: :func:`emotic_mm.locks.output_lock`), and replaced only when it is a folder this
project wrote, an empty folder, or nothing; anything else needs ``overwrite=true``, and the release, its
descriptions file or a folder holding them is never replaced (:func:`emotic_mm.fsutil.check_replaceable`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf

from emotic_mm.data.convert import ConvertOptions, check_out_dir, check_view_sizes, convert_release
from emotic_mm.data.emotic_mat import SKIP_REASONS
from emotic_mm.data.releases import make_release
from emotic_mm.errors import ConfigError
from emotic_mm.fsutil import write_json_atomic
from emotic_mm.locks import output_lock
from emotic_mm.progress import print_table
from emotic_mm.runinfo import output_dir, record_run


def _required(cfg: DictConfig, key: str, hint: str) -> Any:
    if OmegaConf.select(cfg, key, default=None) is None or OmegaConf.is_missing(cfg, key):
        raise ConfigError(f"{key} is not set: {hint}")
    return OmegaConf.select(cfg, key)


def recorded_config(cfg: DictConfig) -> dict[str, Any]:
    """The config as the store's manifest records it: every ``_target_`` left out, since it names the code
    that built the release and the text source, not what the store holds (the manifest's fingerprint
    identifies the store to cached models and checkpoints)."""

    def plain(node: Any) -> Any:
        if isinstance(node, dict):
            return {k: plain(v) for k, v in node.items() if k != "_target_"}
        return node

    return plain(OmegaConf.to_container(cfg, resolve=True))


def prepare(cfg: DictConfig) -> dict[str, Any]:
    """Write the store named by ``data.prepared_dir`` and return its manifest."""
    prepared_dir = Path(str(_required(cfg, "data.prepared_dir", "name the folder the store is written to")))
    workers = cfg.data.get("workers", 2)
    if not isinstance(workers, int) or isinstance(workers, bool) or workers < 0:
        raise ConfigError(
            f"data.workers={workers!r} must be a whole number >= 0 (0 decodes in the main process)"
        )
    context_size, body_size = check_view_sizes(cfg.data.context_size, cfg.data.body_size)
    protect = [Path.cwd(), output_dir()]  # the run dir and where the user stands are never replaced
    if cfg.text.source == "file":
        _required(cfg, "text.path", "pass text.path=descriptions.csv|.jsonl, or use text=template")
    release = make_release(cfg.data)  # data._target_: a release on disk, or one generated first
    release.check(prepared_dir)
    opts = ConvertOptions(
        raw_dir=release.raw_dir,
        out_dir=prepared_dir,
        text_cfg=cfg.text,
        tokenizer_name=str(cfg.tokenizer.name),
        max_length=int(cfg.tokenizer.max_length),
        workers=workers,
        context_size=context_size,
        body_size=body_size,
        extra_manifest={"dataset": release.name, **release.manifest(), "config": recorded_config(cfg)},
        overwrite=cfg.get("overwrite", False),
        protect=protect,
    )
    with output_lock(prepared_dir, "data.prepared_dir"):  # a second prepare into it waits, named
        check_out_dir(opts)  # before anything is generated: a folder we may not replace stops the run here
        release.materialise(workers, protect=[*protect, prepared_dir], overwrite=cfg.get("overwrite", False))
        manifest = convert_release(opts)
    print_summary(manifest, prepared_dir)
    return manifest


def print_summary(manifest: dict[str, Any], prepared_dir: Path) -> None:
    reasons = [r for r in SKIP_REASONS if any(s["skipped"].get(r) for s in manifest["splits"].values())]
    rows = [
        [split, info["persons"], info["kept"], *(info["skipped"].get(r, 0) for r in reasons)]
        for split, info in manifest["splits"].items()
    ]
    print_table(f"prepared store: {prepared_dir}", ["split", "persons", "kept", *reasons], rows)


def main(cfg: DictConfig) -> dict[str, Any]:
    """Hydra entry point: record the run, prepare, keep the manifest in the run dir."""
    record_run("prepare", cfg, make_release(cfg.data).seed)
    manifest = prepare(cfg)
    write_json_atomic(
        output_dir() / "prepare.json", {k: manifest[k] for k in ("splits", "tokenizer", "seconds")}
    )
    return manifest
