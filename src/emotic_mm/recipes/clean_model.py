"""The clean model an attack runs against: the given ``checkpoint``, or one trained once and cached.

``emotic-mm attack model=joint ...`` without ``checkpoint=`` attacks the model that ``emotic-mm train``
would produce with the run's ``model``, ``trainer``, ``loss`` and ``seed`` on its store. It is trained on
first use into ``<paths.data_dir>/models/<variant>-<key>`` (key = hash of those settings and of the
store's manifest) and reused by every later run of a sweep, so a robustness study trains each clean
model once: jobs running at the same time wait on the cache folder's lock while one trains. The folder
is built under a temporary name and renamed when training has finished.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf

from emotic_mm.attacks.registry import ATTACKS
from emotic_mm.checkpoint import checkpoint_dir, load_config
from emotic_mm.data.access import has_checkpoint, open_store
from emotic_mm.data.store import store_fingerprint
from emotic_mm.defenses.registry import weights_defense
from emotic_mm.errors import ConfigError
from emotic_mm.fixed_keys import warn_fixed
from emotic_mm.locks import output_lock
from emotic_mm.models import feature_cache
from emotic_mm.training.runtime import under_torchrun
from emotic_mm.training.trainer import RUNTIME_KEYS

log = logging.getLogger(__name__)
TRAINING_KEYS = ("model", "defense", "trainer", "loss", "seed")


def cache_key(cfg: DictConfig) -> str:
    """Hash of what determines the trained weights: model, trainer, loss, seed and the store."""
    settings = {
        k: OmegaConf.to_container(cfg[k], resolve=True) if isinstance(cfg[k], DictConfig) else cfg[k]
        for k in TRAINING_KEYS
    }
    settings["trainer"] = {k: v for k, v in settings["trainer"].items() if k not in RUNTIME_KEYS}
    settings["defense"] = weights_defense(cfg)
    manifest = Path(str(cfg.data.prepared_dir)) / "manifest.json"
    settings["store"] = store_fingerprint(manifest) if manifest.exists() else str(manifest.parent)
    return hashlib.sha256(json.dumps(settings, sort_keys=True).encode()).hexdigest()[:12]


def training_config(cfg: DictConfig, clean_cfg: DictConfig) -> DictConfig:
    """This run's config with the clean model's training settings: a poisoned model is trained exactly
    like the clean one, on this run's (poisoned) data."""
    merged = OmegaConf.to_container(cfg, resolve=True)
    for key in TRAINING_KEYS:
        value = clean_cfg.get(key)
        if value is not None:
            merged[key] = (
                OmegaConf.to_container(value, resolve=True) if isinstance(value, DictConfig) else value
            )
    merged["trainer"].update({k: cfg.trainer[k] for k in RUNTIME_KEYS if k in cfg.trainer})  # this machine's
    merged["trainer"]["resume"] = False  # a fresh model, whatever the clean run resumed from
    return OmegaConf.create(merged)


def clean_checkpoint(cfg: DictConfig) -> tuple[Path, DictConfig]:
    """The clean model's checkpoint folder and its resolved config (training it first if needed)."""
    kind = ATTACKS.get(str(cfg.attack.name))
    kind.check_defense(cfg, "defense")  # before anything is trained
    if has_checkpoint(cfg):
        path = checkpoint_dir(Path(str(cfg.checkpoint)))
        clean_cfg = load_config(path)
        kind.check_defense(clean_cfg, f"the defense {path} was trained with")
        warn_fixed(cfg, clean_cfg, path, "model")  # model=... on the command line names another model
        return path, clean_cfg
    if under_torchrun():
        raise ConfigError(
            "under torchrun pass checkpoint=<run>/best (train the clean model first with emotic-mm train)"
        )
    open_store(cfg)  # a missing store fails here, with its own one-line message, before any training
    home = Path(str(cfg.paths.data_dir)) / "models" / f"{cfg.model.name}-{cache_key(cfg)}"
    with output_lock(home, "the clean-model cache"):  # concurrent jobs of a sweep: one trains, the rest wait
        if not (home / "best").exists():
            _train_into(cfg, home)
        else:
            log.info("reusing the clean %s model in %s", cfg.model.name, home)
    path = checkpoint_dir(home / "best")
    return path, load_config(path)


def _train_into(cfg: DictConfig, home: Path) -> None:
    from emotic_mm.runinfo import record_run
    from emotic_mm.training.run import train

    log.info("training the clean %s model (cached in %s)", cfg.model.name, home)
    partial = home.with_name(f".{home.name}.partial-{os.getpid()}")
    shutil.rmtree(partial, ignore_errors=True)
    partial.mkdir(parents=True)
    train_cfg = OmegaConf.merge(cfg, {"trainer": {"resume": False}})
    train_cfg.defense = OmegaConf.create(weights_defense(cfg))  # one clean model whatever detector runs after
    try:
        record_run("train", train_cfg, int(cfg.seed), run_dir=partial, cached_for="attack")
        train(train_cfg, run_dir=partial)
        shutil.rmtree(partial / "last", ignore_errors=True)  # the attacks only read best/
        partial.rename(home)
    except OSError:
        if not (home / "best").exists():  # not "another job of the sweep finished the same model first"
            raise
    finally:
        shutil.rmtree(partial, ignore_errors=True)


def clean_split_metrics(cfg: DictConfig, path: Path, model: Any, data: Any, device: Any) -> dict[str, float]:
    """The clean model's mAP, dominant accuracy and VAD error on ``data``'s split. For a model of the
    cache (trained for its store, never changed) they are computed once and kept beside its weights, so a
    sweep's many runs on one clean model do not re-score the whole split each time."""
    from emotic_mm.fsutil import is_within, write_json_atomic
    from emotic_mm.training.inference import clean_metrics

    cached = is_within(path, Path(str(cfg.paths.data_dir)) / "models")
    file = Path(path) / f"clean_metrics_{data.split.name}.json"
    if cached and file.is_file():
        return json.loads(file.read_text())
    metrics = clean_metrics(model, data, device, feature_cache.folder(cfg))
    if cached:
        write_json_atomic(file, metrics)
    return metrics
