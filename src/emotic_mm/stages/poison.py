"""``emotic-mm attack attack=poison_backdoor|poison_collision``: train on poisoned data, measure the damage.

Backdoor recipe: clean model (given or trained once) → choose the poisoned training persons → a
poisoned *view* of the train split (trigger stamped as rows are read, target label added for the dirty
variant) → train the poisoned model with the ordinary trainer and the clean model's settings → clean
test metrics of both models → attack success rate (ASR) of the trigger on both → ``summary.json``,
``examples.png``.

Collision recipe: clean model → targets (test persons) and bases (training persons of the base class)
→ all poisons crafted as one batch → poisoned view of the train split (base rows replaced by their
poisons, labels untouched) → fine-tune (head or all) or retrain → is each target now classified as
the base class? → clean metrics of both → ``summary.json``, ``poisons.npz``, ``examples.png``.

The store on disk is never modified.
"""

from __future__ import annotations

import copy
import logging
import shutil
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from omegaconf import DictConfig, OmegaConf
from torch import nn

from emotic_mm.attacks.backdoor import TriggerSpec, check_poisoning, choose_poisoned, stamp, trigger_pixels
from emotic_mm.attacks.collision import CollisionSettings, craft, image_features
from emotic_mm.checkpoint import load_model
from emotic_mm.data.categories import CATEGORIES, CATEGORY_INDEX
from emotic_mm.data.loader import EmoticDataset
from emotic_mm.data.poisoned import PoisonedView, replace_rows
from emotic_mm.errors import ConfigError
from emotic_mm.fsutil import atomic_file, write_json_atomic
from emotic_mm.progress import print_table, share_text
from emotic_mm.runinfo import output_dir
from emotic_mm.stages.clean_model import clean_checkpoint, training_config
from emotic_mm.stages.common import check_store_fits_model, dataset, open_store, person_boxes, warm_text_features
from emotic_mm.training.distributed import DistInfo
from emotic_mm.training.inference import collect_outputs, model_inputs, to_device
from emotic_mm.training.metrics import emotion_metrics
from emotic_mm.training.trainer import make_loader, select_device

log = logging.getLogger(__name__)


# ---------------------------------------------------------------------------------------------- shared
def clean_metrics(model: nn.Module, data: EmoticDataset, device: torch.device) -> dict[str, float]:
    """mAP, dominant-emotion accuracy and VAD error of ``model`` on ``data`` (no poison involved)."""
    warm_text_features(model, [data])
    out = collect_outputs(model, make_loader(data, 128, 0, device, False, 0, DistInfo()), device)
    m = emotion_metrics(out["logits"], out["categories"], out["vad_pred"], out["vad_true"], out.get("votes"))
    return {"map": m["map"], "dominant_acc": m["dominant_acc"], "vad_mae": m["vad_mae"]}


def top1(model: nn.Module, data: EmoticDataset, ids: np.ndarray, device: torch.device, edit=None,
         chunk: int = 128) -> np.ndarray:
    """Top-1 category of ``model`` on the persons ``ids``, after ``edit(batch)`` if given."""
    model.eval()
    preds = []
    with torch.inference_mode():
        for i in range(0, len(ids), chunk):
            batch = data.__getitems__(ids[i:i + chunk].tolist())
            if edit is not None:
                batch = edit(batch)
            preds.append(model(to_device(model_inputs(batch), device))["logits"].argmax(1).cpu().numpy())
    return np.concatenate(preds) if preds else np.zeros(0, dtype=np.int64)


def _prepare(cfg: DictConfig) -> tuple[Path, DictConfig, Any, list[str], torch.device, Path]:
    import os

    if int(os.environ.get("WORLD_SIZE", "1")) > 1:
        raise ConfigError(f"attack={cfg.attack.name} runs in one process (it trains a model); start it without torchrun")
    run_dir = Path(output_dir())
    run_dir.mkdir(parents=True, exist_ok=True)
    clean_path, clean_cfg = clean_checkpoint(cfg)
    store = open_store(cfg)
    check_store_fits_model(store, clean_cfg.model)
    return clean_path, clean_cfg, store, [str(m) for m in clean_cfg.model.modalities], select_device(str(cfg.device)), run_dir


def _train_poisoned(cfg: DictConfig, clean_cfg: DictConfig, view: PoisonedView, run_dir: Path,
                    model: nn.Module | None = None, overrides: dict[str, Any] | None = None) -> Path:
    from emotic_mm.stages.train import train

    train_cfg = training_config(cfg, clean_cfg)
    if overrides:
        train_cfg = OmegaConf.merge(train_cfg, overrides)
    out = run_dir / "poisoned_model"
    train(train_cfg, run_dir=out, train_set=view, model=model)
    if not bool(cfg.attack.get("keep_last", False)):
        shutil.rmtree(out / "last", ignore_errors=True)
    return out / "best"


def _summary_core(cfg: DictConfig, clean_cfg: DictConfig, clean_path: Path, clean: dict, poisoned: dict,
                  started: float) -> dict[str, Any]:
    return {"attack": str(cfg.attack.name), "model": str(clean_cfg.model.name), "seed": int(cfg.seed),
            "clean": clean, "poisoned": poisoned,
            "delta_map": poisoned["map"] - clean["map"],
            "delta_dominant_acc": poisoned["dominant_acc"] - clean["dominant_acc"],
            "checkpoint_clean": str(clean_path),
            "wall_seconds": time.time() - started}


# ---------------------------------------------------------------------------------------------- backdoor
class TriggerEdit:
    """Stamp the trigger on the poisoned rows of a batch (and add the target label for dirty label).
    A class rather than a closure so DataLoader workers can pickle it under the spawn start method."""

    def __init__(self, split: Any, rows: torch.Tensor, surface: str, target: int, dirty: bool) -> None:
        self.split, self.rows, self.surface, self.target, self.dirty = split, rows, surface, target, dirty

    def __call__(self, batch: dict[str, torch.Tensor], hit: torch.Tensor) -> dict[str, torch.Tensor]:
        sub = {k: batch[k][hit] for k in ("context", "body", "index") if k in batch}
        boxes = person_boxes(self.split, sub["index"].numpy()) if self.surface == "scene" else (None, None)
        stamped = stamp(sub, self.rows, self.surface, *boxes)
        updates = {k: stamped[k] for k in ("context", "body") if k in stamped}
        if self.dirty:
            labels = batch["categories"][hit].clone()
            labels[:, self.target] = 1.0
            updates["categories"] = labels
        return replace_rows(batch, hit, updates)


class PoisonRows:
    """Replace the base rows of a batch by their crafted poisons (labels untouched)."""

    def __init__(self, bases: np.ndarray, poisons: dict[str, torch.Tensor]) -> None:
        self.position = {int(i): p for p, i in enumerate(bases)}
        self.poisons = poisons

    def __call__(self, batch: dict[str, torch.Tensor], hit: torch.Tensor) -> dict[str, torch.Tensor]:
        which = torch.tensor([self.position[int(i)] for i in batch["index"][hit]])
        return replace_rows(batch, hit, {v: p[which] for v, p in self.poisons.items()})


def backdoor_view(base: EmoticDataset, poisoned: np.ndarray, rows: torch.Tensor, surface: str,
                  target: int, dirty: bool) -> PoisonedView:
    """The train split as the poisoned model sees it: trigger on the chosen persons (+ target label)."""
    return PoisonedView(base, poisoned, TriggerEdit(base.split, rows, surface, target, dirty))


def trigger_spec(a: DictConfig, seed: int) -> TriggerSpec:
    t = a.get("trigger", {})
    spec = TriggerSpec(pixels=int(a.pixels), surface=str(a.surface), pattern=str(t.get("pattern", "block")),
                       position=OmegaConf.to_object(t.position) if OmegaConf.is_list(t.get("position")) else t.get("position", "bottom_right"),
                       colour=OmegaConf.to_object(t.colour) if OmegaConf.is_list(t.get("colour")) else t.get("colour", "checker"),
                       cell=t.get("cell", "auto"), seed=seed)
    spec.check()
    return spec


def backdoor(cfg: DictConfig) -> dict[str, Any]:
    a = cfg.attack
    started = time.time()
    spec = trigger_spec(a, int(cfg.seed))
    check_poisoning(float(a.rate), str(a.variant), str(a.target))  # fail fast, before any training
    clean_path, clean_cfg, store, modalities, device, run_dir = _prepare(cfg)
    view_name = "context" if spec.surface == "scene" else spec.surface
    if view_name not in modalities:
        raise ConfigError(f"attack.surface={spec.surface!r}: the clean model has no {view_name!r} stream (modalities {modalities})")
    target = CATEGORY_INDEX[str(a.target)]
    train_set = dataset(store, "train", modalities)
    poisoned_ids = choose_poisoned(np.asarray(train_set.split.categories[:]), float(a.rate), str(a.variant),
                                   str(a.target), int(cfg.seed))
    view_size = int(train_set.split.context.shape[1] if view_name == "context" else train_set.split.body.shape[1])
    clean_model = load_model(clean_path, "cpu")[0]
    rows = trigger_pixels(spec, view_size, clean_model.image_encoders[view_name].input_size)
    view = backdoor_view(train_set, poisoned_ids, rows, spec.surface, target, str(a.variant) == "dirty")
    poisoned_path = _train_poisoned(cfg, clean_cfg, view, run_dir)

    test = dataset(store, str(a.split), modalities)
    victims = np.flatnonzero(np.asarray(test.split.categories[:])[:, target] == 0)
    def triggered(batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        boxes = person_boxes(test.split, batch["index"].numpy()) if spec.surface == "scene" else (None, None)
        return stamp(batch, rows, spec.surface, *boxes)

    results = {}
    for name, model in (("clean", clean_model.to(device)), ("poisoned", load_model(poisoned_path, device)[0])):
        model.eval()
        metrics = clean_metrics(model, test, device)
        hits = top1(model, test, victims, device, triggered) == target
        results[name] = (metrics, float(hits.mean()) if len(hits) else None, model)
    summary = {**_summary_core(cfg, clean_cfg, clean_path, results["clean"][0], results["poisoned"][0], started),
               "rate": float(a.rate), "pixels": spec.pixels, "surface": spec.surface, "variant": str(a.variant),
               "target": str(a.target), "asr": results["poisoned"][1], "asr_clean_model": results["clean"][1],
               "trigger_pattern": spec.pattern, "trigger_position": str(spec.position),
               "trigger_colour": str(spec.colour), "trigger_cell": str(spec.cell),
               "poisoned_persons": int(len(poisoned_ids)), "train_persons": int(len(train_set)),
               "triggered_persons": int(len(victims)), "trigger_stored_pixels": int(len(rows)),
               "split": str(a.split), "poisoned_checkpoint": str(poisoned_path)}
    write_json_atomic(run_dir / "summary.json", summary)
    _draw_backdoor(run_dir / "examples.png", test, victims[: int(a.examples)], view_name, triggered,
                   results["poisoned"][2], device)
    _print(summary, [["ASR (poisoned model)", share_text(summary["asr"], summary["triggered_persons"])],
                     ["ASR (clean model, control)", share_text(summary["asr_clean_model"], summary["triggered_persons"])]])
    return summary


# ---------------------------------------------------------------------------------------------- collision
def collision_settings(a: DictConfig) -> CollisionSettings:
    s = CollisionSettings(beta=float(a.beta), epsilon=float(a.epsilon), steps=int(a.steps), lr=float(a.lr),
                          max_batch=int(a.max_batch))
    s.check()
    return s


def collision(cfg: DictConfig) -> dict[str, Any]:
    a = cfg.attack
    started = time.time()
    settings = collision_settings(a)
    mode = str(a.finetune)
    if mode not in ("head", "all", "retrain"):
        raise ConfigError(f"attack.finetune={mode!r} is not one of head, all, retrain")
    if str(a.base) not in CATEGORY_INDEX:
        raise ConfigError(f"attack.base={a.base!r} is not an EMOTIC category (one of {', '.join(CATEGORIES)})")
    n_poisons, n_targets = int(a.n_poisons), int(a.targets)
    if n_poisons < 1 or n_targets < 1 or n_targets > n_poisons:
        raise ConfigError(f"attack.n_poisons={n_poisons}, attack.targets={n_targets}: need 1 <= targets <= n_poisons")
    clean_path, clean_cfg, store, modalities, device, run_dir = _prepare(cfg)
    if not {"context", "body"} & set(modalities):
        raise ConfigError(f"poison_collision needs an image stream; the clean model has modalities {modalities}")
    base_class = CATEGORY_INDEX[str(a.base)]
    model = load_model(clean_path, device)[0].eval()
    train_set, test = dataset(store, "train", modalities), dataset(store, str(a.split), modalities)
    rng = np.random.default_rng(int(cfg.seed))

    # targets: test persons without the base class that the clean model does not already call base
    candidates = np.flatnonzero(np.asarray(test.split.categories[:])[:, base_class] == 0)
    candidates = candidates[top1(model, test, candidates, device) != base_class]
    if len(candidates) < n_targets:
        raise ConfigError(f"attack.targets={n_targets}: only {len(candidates)} test persons qualify")
    targets = np.sort(rng.choice(candidates, size=n_targets, replace=False))
    # bases: training persons labelled with the base class (clean labels: they keep them)
    pool = np.flatnonzero(np.asarray(train_set.split.categories[:])[:, base_class] > 0)
    if len(pool) < n_poisons:
        raise ConfigError(f"attack.n_poisons={n_poisons}: only {len(pool)} training persons carry {a.base!r}")
    bases = np.sort(rng.choice(pool, size=n_poisons, replace=False))
    owner = np.arange(n_poisons) % n_targets  # poison i aims at target owner[i]

    views = [v for v in ("context", "body") if v in modalities]
    target_batch = test.__getitems__(targets.tolist())
    target_features = image_features(model, {v: target_batch[v].to(device) for v in views})[torch.from_numpy(owner)]
    base_batch = train_set.__getitems__(bases.tolist())
    crafted = craft(model, {v: base_batch[v].to(device) for v in views}, target_features, settings)
    poisons = {v: crafted.poisons[v].cpu() for v in views}
    view = PoisonedView(train_set, bases, PoisonRows(bases, poisons))
    start_model, overrides = None, None
    if mode != "retrain":
        start_model = copy.deepcopy(model)  # the clean weights, without reading the checkpoint again
        if mode == "head":  # transfer learning, the Poison Frogs setting: encoders fixed, heads learn
            for enc in start_model.image_encoders.values():
                enc.frozen = True
                enc.backbone.requires_grad_(False)
        overrides = {"trainer": {"epochs": int(a.finetune_epochs), "optimizer": {"lr": float(a.finetune_lr)},
                                 "early_stopping_patience": 0}}
    poisoned_path = _train_poisoned(cfg, clean_cfg, view, run_dir, start_model, overrides)

    poisoned_model = load_model(poisoned_path, device)[0].eval()
    success = top1(poisoned_model, test, targets, device) == base_class
    clean, poisoned = clean_metrics(model, test, device), clean_metrics(poisoned_model, test, device)
    summary = {**_summary_core(cfg, clean_cfg, clean_path, clean, poisoned, started),
               "n_poisons": n_poisons, "targets": n_targets, "base": str(a.base), "beta": settings.beta,
               "epsilon": settings.epsilon, "steps": settings.steps, "lr": settings.lr, "finetune": mode,
               "target_success_rate": float(success.mean()),
               "target_indices": targets.tolist(), "target_success": success.tolist(),
               "feature_distance_start": float(crafted.feature_loss[0]), "feature_distance_end": float(crafted.final_distance.mean()),
               "max_pixel_change": float(crafted.max_change.max()), "split": str(a.split),
               "poisoned_checkpoint": str(poisoned_path)}
    with atomic_file(run_dir / "poisons.npz") as tmp:
        np.savez_compressed(tmp, base_index=bases, target_index=targets[owner],
                            **{f"poison_{v}": poisons[v].numpy() for v in views})
    write_json_atomic(run_dir / "summary.json", summary)
    _draw_collision(run_dir / "examples.png", base_batch, poisons, target_batch, owner, views[0], int(a.examples))
    _print(summary, [["targets classified as the base class (poisoned)", share_text(summary["target_success_rate"], n_targets)],
                     ["feature distance start → end", f"{summary['feature_distance_start']:.3f} → {summary['feature_distance_end']:.3f}"]])
    return summary


# ---------------------------------------------------------------------------------------------- output
def _print(summary: dict[str, Any], rows: list[list[str]]) -> None:
    c, p = summary["clean"], summary["poisoned"]
    print_table(f"{summary['attack']} · {summary['model']}", ["metric", "value"], [
        *rows, ["test mAP clean → poisoned", f"{c['map']:.4f} → {p['map']:.4f}"],
        ["dominant acc clean → poisoned", f"{c['dominant_acc']:.3f} → {p['dominant_acc']:.3f}"],
        ["wall time (s)", f"{summary['wall_seconds']:.1f}"]])


def _figure(rows: int, cols: int):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(rows, cols, figsize=(2.4 * cols, 2.6 * rows), squeeze=False)
    for ax in axes.flat:
        ax.set_xticks([])
        ax.set_yticks([])
    return plt, fig, axes


def _show(ax, image: torch.Tensor, title: str) -> None:
    ax.imshow(image.permute(1, 2, 0).to(torch.uint8).numpy())
    ax.set_title(title, fontsize=7)  # above the picture: an x-label would sit under the next row


def _draw_backdoor(path: Path, test: EmoticDataset, ids: np.ndarray, view: str, triggered, model: nn.Module,
                   device: torch.device) -> None:
    """Clean vs triggered test persons with the poisoned model's top-1 under each."""
    if len(ids) == 0:
        return
    batch = test.__getitems__(ids.tolist())
    trig = triggered(batch)
    clean_pred, trig_pred = top1(model, test, ids, device), top1(model, test, ids, device, triggered)
    plt, fig, axes = _figure(2, len(ids))
    for j in range(len(ids)):
        _show(axes[0][j], batch[view][j], f"clean: {CATEGORIES[clean_pred[j]]}")
        _show(axes[1][j], trig[view][j], f"trigger: {CATEGORIES[trig_pred[j]]}")
    fig.suptitle(f"backdoor trigger on the {view} view (poisoned model's top-1)", fontsize=9)
    _save(plt, fig, path)


def _draw_collision(path: Path, bases: dict, poisons: dict, targets: dict, owner: np.ndarray, view: str, count: int) -> None:
    """Base, poison (looks like the base) and the target it collides with."""
    count = min(count, len(owner))
    if count == 0:
        return
    plt, fig, axes = _figure(3, count)
    for j in range(count):
        _show(axes[0][j], bases[view][j], "base")
        _show(axes[1][j], poisons[view][j], f"poison (max Δ {int((poisons[view][j].int() - bases[view][j].int()).abs().max())})")
        _show(axes[2][j], targets[view][int(owner[j])], "target")
    fig.suptitle(f"feature-collision poisons ({view} view)", fontsize=9)
    _save(plt, fig, path)


def _save(plt, fig, path: Path) -> None:
    fig.tight_layout()
    with atomic_file(path) as tmp:
        fig.savefig(tmp, dpi=80)
    plt.close(fig)
