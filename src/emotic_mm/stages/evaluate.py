"""``emotic-mm eval checkpoint=<run>/best split=test``: the figures papers report, and the files behind them.

Recipe: load the checkpoint (config + weights) → store and loaders → outputs on the split (and on val,
where the F1 thresholds are chosen) → metrics → ``metrics.json``, ``per_category.csv``,
``predictions.npz``, ``pr_curves.png`` and a table.

Under ``torchrun`` each rank scores one exact, unpadded block of persons; the outputs are gathered on
rank 0 in dataset order, and rank 0 alone computes the metrics and writes the files — the same
figures as one process.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from omegaconf import DictConfig

from emotic_mm.models.loading import load_model
from emotic_mm.config import whole_number
from emotic_mm.models.factory import build_model
from emotic_mm.data.categories import CATEGORIES
from emotic_mm.errors import ConfigError
from emotic_mm.fixed_keys import warn_fixed
from emotic_mm.fsutil import atomic_file, write_json_atomic
from emotic_mm.progress import print_table
from emotic_mm.runinfo import output_dir, record_run
from emotic_mm.data.access import dataset, has_checkpoint, store_for_model
from emotic_mm.models.warming import warm_text_features
from emotic_mm.report import figures
from emotic_mm.training.distributed import DistInfo, gather_to_main
from emotic_mm.training.inference import collect_outputs
from emotic_mm.training.metrics import emotion_metrics, equal_error_thresholds, f1_at, retrieval_recall
from emotic_mm.training.runtime import make_loader, runtime

log = logging.getLogger(__name__)


def evaluate(cfg: DictConfig, run_dir: Path | None = None) -> dict[str, Any]:
    """Evaluate ``cfg.checkpoint`` on ``cfg.split``; returns the metrics written to ``metrics.json``."""
    run_dir = Path(run_dir or output_dir())
    run_dir.mkdir(parents=True, exist_ok=True)
    if cfg.split not in ("val", "test", "train"):
        raise ConfigError(f"split={cfg.split!r} is not one of val, test, train")
    if not has_checkpoint(cfg) and cfg.get("model") is None:
        raise ConfigError("checkpoint is not set: pass checkpoint=outputs/train/<date>/<time>/best "
                          "(or model=clip checkpoint=null for a zero-shot evaluation)")
    if cfg.get("certify_persons") is not None:  # before any work: a bad subset size is one line
        whole_number(cfg.certify_persons, "certify_persons", 1)
    with runtime(str(cfg.device)) as rt:
        return _evaluate(cfg, run_dir, rt.device, rt.dist)


def load_or_build(cfg: DictConfig, device: torch.device) -> tuple[torch.nn.Module, DictConfig, dict[str, Any], Path | None]:
    """The checkpoint's model, or (``checkpoint=null`` with a ``model``) one that scores without training:
    a pretrained vision–language model's zero-shot prompts (``model=clip``)."""
    if has_checkpoint(cfg):
        checkpoint = Path(str(cfg.checkpoint))
        model, model_cfg, meta = load_model(checkpoint, device)
        if cfg.get("model") is not None:  # eval's model group is chosen only by the user (model=...)
            warn_fixed(cfg, model_cfg, checkpoint, "model", always=True)
        return model, model_cfg, meta, checkpoint
    model = build_model(cfg.model, cfg.get("defense"))
    if not getattr(model, "zero_shot", False):
        raise ConfigError(f"model={cfg.model.name} needs training before it can score: pass checkpoint=<run>/best "
                          "(zero-shot evaluation is for model=clip)")
    return model.to(device), cfg, {"zero_shot": True}, None


def _evaluate(cfg: DictConfig, run_dir: Path, device: torch.device, dist: DistInfo) -> dict[str, Any]:
    model, model_cfg, meta, checkpoint = load_or_build(cfg, device)
    modalities = [str(m) for m in model_cfg.model.modalities]
    store = store_for_model(cfg, model_cfg, checkpoint)

    per_rank: list[int] = []

    def outputs(split: str) -> dict[str, torch.Tensor] | None:
        """This split's outputs in store order on rank 0 (``None`` on the other ranks)."""
        data = dataset(store, split, modalities)
        if len(data) == 0:
            raise ConfigError(f"{store.path}: the {split} split has no persons to evaluate "
                              "(see the store's manifest.json for why persons were skipped)")
        warm_text_features(model, [data])  # whole split, fixed batching: same features on every rank
        loader = make_loader(data, int(cfg.batch_size), int(cfg.workers), device,
                             False, 0, dist, exact=True)
        parts = gather_to_main(collect_outputs(model, loader, device, str(cfg.precision)), dist)
        if parts is None:
            return None
        if split == str(cfg.split):
            per_rank.extend(len(p["index"]) if p else 0 for p in parts)
        parts = [p for p in parts if p]  # a rank with an empty block has no outputs
        return {k: torch.cat([p[k] for p in parts]) for k in parts[0]}

    out = outputs(str(cfg.split))
    val = out if cfg.split == "val" else outputs("val")
    if not dist.is_main:
        return {}
    metrics = emotion_metrics(out["logits"], out["categories"], out["vad_pred"], out["vad_true"], out.get("votes"))
    thresholds = equal_error_thresholds(val["logits"].numpy(), val["categories"].numpy())
    f1 = f1_at(out["logits"].numpy(), out["categories"].numpy(), thresholds)
    metrics["f1"] = float(np.nanmean(f1))
    if "image_embedding" in out and "text_embedding" in out:
        metrics["retrieval"] = retrieval_recall(out["image_embedding"], out["text_embedding"])
    if "zero_shot" in out:
        metrics["zero_shot_map"] = emotion_metrics(out["zero_shot"], out["categories"], out["vad_pred"],
                                                   out["vad_true"])["map"]
    metrics.update({"split": str(cfg.split), "persons": int(out["logits"].shape[0]), "checkpoint": str(checkpoint) if checkpoint else None,
                    "zero_shot": bool(meta.get("zero_shot", False)),
                    "variant": str(model_cfg.model.name), "modalities": modalities,
                    "trained_epoch": meta.get("epoch"), "world_size": dist.world_size, "persons_per_rank": per_rank, "ap_definition": "torchmetrics/sklearn average precision; map_voc = MATLAB demoComputeAP"})
    if bool(cfg.get("certify", False)):
        metrics["certified"] = _certify(cfg, model, model_cfg, dataset(store, str(cfg.split), modalities), device, run_dir)
    _write_outputs(run_dir, metrics, out, f1, thresholds)
    _print(metrics)
    return metrics


def _write_outputs(run_dir: Path, metrics: dict[str, Any], out: dict[str, torch.Tensor], f1: np.ndarray,
                   thresholds: np.ndarray) -> None:
    labels = out["categories"].numpy()
    with atomic_file(run_dir / "per_category.csv") as tmp:
        pd.DataFrame({
            "category": CATEGORIES,
            "ap": [metrics["per_category_ap"][c] for c in CATEGORIES],
            "ap_voc": [metrics["per_category_ap_voc"][c] for c in CATEGORIES],
            "f1": f1, "threshold_from_val": thresholds, "positives": labels.sum(0).astype(int),
        }).to_csv(tmp, index=False)
    arrays = {k: v.numpy() for k, v in out.items()}
    with atomic_file(run_dir / "predictions.npz") as tmp:
        np.savez_compressed(tmp, scores=torch.sigmoid(out["logits"]).numpy(), **arrays)
    figures.pr_curves(run_dir / "pr_curves.png", out["logits"], out["categories"], metrics["per_category_ap"],
                      f"{metrics['variant']} ({'+'.join(metrics['modalities'])}) · {metrics['split']} · mAP {metrics['map']:.4f}")
    write_json_atomic(run_dir / "metrics.json", metrics)  # last: its presence means the run is complete


def _certify(cfg: DictConfig, model: torch.nn.Module, model_cfg: DictConfig, data: Any, device: torch.device,
             run_dir: Path) -> dict[str, Any]:
    """certificates.csv (one row per person) and the certified figures for metrics.json."""
    from omegaconf import OmegaConf

    from emotic_mm.defenses.certify import REPORT_RADII, certified_accuracy, median_certified_radius
    from emotic_mm.recipes.certification import certify_persons, chosen_persons, settings_for

    settings = settings_for(model_cfg, OmegaConf.to_container(cfg.get("defense") or {}, resolve=True))
    persons = chosen_persons(len(data), cfg.get("certify_persons"), settings.seed)
    certificates, correct = certify_persons(model, data, settings, device, indices=persons)
    table = pd.DataFrame(certificates.rows())
    table.insert(0, "index", persons)
    table.insert(2, "correct", correct)
    table["prediction"] = [CATEGORIES[int(c)] for c in certificates.prediction]
    with atomic_file(run_dir / "certificates.csv") as tmp:
        table.to_csv(tmp, index=False)
    accuracy = certified_accuracy(certificates.radius, correct, REPORT_RADII)
    figures = {"persons": len(table), "persons_of_split": len(data),
               "subset": None if len(persons) == len(data) else f"{len(persons)} drawn with defense.seed={settings.seed}",
               "keep": settings.keep, "pixels": certificates.d, "samples": settings.samples,
               "selection_samples": settings.selection_samples, "alpha": settings.alpha, "seed": settings.seed,
               "certified_accuracy": {str(r): float(a) for r, a in accuracy.items()},
               "median_certified_radius": float(median_certified_radius(certificates.radius, correct)),
               "abstained": float(certificates.abstained.mean()), "clean_vote_accuracy": float(correct.mean())}
    from emotic_mm.report.tables import one_answer

    alike = one_answer(table["prediction"])  # a constant vote is certified to any radius, which is no robustness
    figures["one_answer"] = alike
    if alike:
        log.warning("the smoothed classifier answers %s: its certificates say nothing about robustness", alike)
    print_table(f"certified few-pixel robustness (randomized ablation, keep {settings.keep} of {certificates.d}, "
                f"n = {settings.samples}, alpha = {settings.alpha})", ["radius r (pixels)", "certified dominant accuracy"],
                [[str(r), f"{a:.3f} of {len(table)}"] for r, a in accuracy.items()])
    return figures


def _print(m: dict[str, Any]) -> None:
    rows = [["mAP", f"{m['map']:.4f}"], ["mAP (VOC interpolated)", f"{m['map_voc']:.4f}"],
            ["dominant-emotion accuracy", f"{m['dominant_acc']:.4f}"], ["top-1 hit rate", f"{m['top1_hit']:.4f}"],
            ["F1 (val thresholds)", f"{m['f1']:.4f}"], ["VAD MAE (V/A/D)" + (" — untrained head" if m.get("zero_shot") else ""),
             f"{m['vad_mae']:.3f} ({m['valence_mae']:.2f}/{m['arousal_mae']:.2f}/{m['dominance_mae']:.2f})"]]
    if "retrieval" in m:
        r = m["retrieval"]
        rows.append(["image→text R@1/5/10", f"{r['i2t_r@1']:.3f}/{r['i2t_r@5']:.3f}/{r['i2t_r@10']:.3f}"])
        rows.append(["text→image R@1/5/10", f"{r['t2i_r@1']:.3f}/{r['t2i_r@5']:.3f}/{r['t2i_r@10']:.3f}"])
    if "zero_shot_map" in m:
        rows.append(["zero-shot mAP (name similarity)", f"{m['zero_shot_map']:.4f}"])
    print_table(f"{m['variant']} {'+'.join(m['modalities'])} · {m['split']} ({m['persons']} persons)", ["metric", "value"], rows)


def main(cfg: DictConfig) -> dict[str, Any]:
    record_run("eval", cfg, None)
    return evaluate(cfg)
