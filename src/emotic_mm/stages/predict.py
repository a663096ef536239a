"""``emotic-mm predict checkpoint=<run>/best input=photo.jpg|people.csv``: emotions of people in new photos.

Recipe: the preprocessing the checkpoint was trained with (view sizes, tokenizer, token length,
description source — from its store's manifest, else from its config) → read and check the input →
describe persons without text the way ``prepare`` would → load the model → score (tokenised with
``prepare``'s function, streamed through a DataLoader) → top-k emotions, VAD, dominant emotion →
``predictions.json``, ``predictions.csv`` and a table. Pixels go through :mod:`emotic_mm.data.images`,
the very functions ``prepare`` uses, so a photo from the store gives the store's arrays. The steps live
in :mod:`emotic_mm.prediction`.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from omegaconf import DictConfig

from emotic_mm.checkpoint import checkpoint_dir, load_config, read_meta
from emotic_mm.data.access import has_checkpoint
from emotic_mm.data.categories import CATEGORIES
from emotic_mm.data.photos import check_photos
from emotic_mm.errors import ConfigError
from emotic_mm.fsutil import write_json_atomic, write_text_atomic
from emotic_mm.models.loading import load_model
from emotic_mm.prediction.console import print_predictions
from emotic_mm.prediction.inputs import describe_missing, flag_small, read_input
from emotic_mm.prediction.outputs import check_outputs, predictions, predictions_csv
from emotic_mm.prediction.preprocessing import trained_preprocessing
from emotic_mm.prediction.scoring import score
from emotic_mm.runinfo import output_dir, record_run
from emotic_mm.training.runtime import select_device

log = logging.getLogger(__name__)


def predict(cfg: DictConfig, run_dir: Path | None = None) -> dict[str, Any]:
    """Score every person of the input; returns what ``predictions.json`` holds."""
    run_dir = Path(run_dir or output_dir())
    run_dir.mkdir(parents=True, exist_ok=True)
    check_outputs(run_dir, cfg.get("overwrite", False), ("predictions.json", "predictions.csv"))
    if not has_checkpoint(cfg):
        raise ConfigError("checkpoint is not set: pass checkpoint=outputs/train/<date>/<time>/best")
    top_k = int(cfg.top_k)
    if not 1 <= top_k <= len(CATEGORIES):
        raise ConfigError(f"top_k={top_k} must be between 1 and {len(CATEGORIES)}")
    checkpoint = Path(str(cfg.checkpoint))
    prep = trained_preprocessing(
        load_config(checkpoint), cfg.get("max_length"), read_meta(checkpoint_dir(checkpoint)).get("store")
    )
    photos = read_input(cfg, prep)
    check_photos(photos, prep.needs_image)  # every input problem surfaces before a model is loaded
    for small in flag_small(photos, prep, cfg.get("min_side")):  # once per row, and in its output record
        log.warning("%s: %s", small.where, small.warning)
    describe_missing(photos, prep, str(cfg.text_fallback))
    device = select_device(str(cfg.device))
    model, model_cfg, _ = load_model(checkpoint, device)
    model.eval()
    out = score(model, photos, prep, device, int(cfg.batch_size), int(cfg.workers), str(cfg.precision))
    result = predictions(cfg.checkpoint, str(model_cfg.model.name), prep, photos, out, top_k)
    write_json_atomic(run_dir / "predictions.json", result)
    write_text_atomic(run_dir / "predictions.csv", predictions_csv(result["predictions"], top_k))
    print_predictions(result, top_k, int(cfg.print_rows), run_dir)
    return result


def main(cfg: DictConfig) -> dict[str, Any]:
    # before run.json and config.yaml are written (predict() checks its own two files)
    check_outputs(output_dir(), cfg.get("overwrite", False), ("run.json", "config.yaml"))
    record_run("predict", cfg, None)
    return predict(cfg)
