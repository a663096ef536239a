"""``emotic-mm attack attack=pixel``: few-pixel evasion against a trained checkpoint.

Recipe: load checkpoint → select persons of the split → clean predictions → choose labels (clean top-1,
or the target) → run the batched engine group by group → ``attack.csv``, ``summary.json``,
``adversarial.npz``, ``examples.png``.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from omegaconf import DictConfig

from emotic_mm.attacks.pixel import PixelAttack, PixelAttackSettings, paint, paint_scene_body, scene_body_boxes
from emotic_mm.checkpoint import load_model
from emotic_mm.data.categories import CATEGORIES, CATEGORY_INDEX
from emotic_mm.errors import ConfigError
from emotic_mm.fsutil import atomic_file, write_json_atomic
from emotic_mm.progress import print_table, progress_bar, share_text
from emotic_mm.runinfo import output_dir, record_run
from emotic_mm.stages.clean_model import clean_checkpoint
from emotic_mm.stages.common import check_store_fits_model, dataset, open_store, person_boxes, warm_text_features
from emotic_mm.training.distributed import cleanup, gather_to_main, setup_distributed
from emotic_mm.training.inference import model_inputs, to_device
from emotic_mm.training.trainer import select_device

log = logging.getLogger(__name__)


def working_views(model: Any, inputs: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Replace the stored views by the pictures the model's encoders actually look at (e.g. 64 px),
    so that the k pixels are pixels of what the model sees rather than of the 224/128 store views."""
    out = dict(inputs)
    with torch.inference_mode():
        for name, encoder in getattr(model, "image_encoders", {}).items():
            if name in out:
                out[name] = encoder.working_view(out[name])
    return out


def settings_from(cfg: Any, seed: int) -> PixelAttackSettings:
    return PixelAttackSettings(
        pixels=int(cfg.pixels), surface=str(cfg.surface), algorithm=str(cfg.algorithm), targeted=bool(cfg.targeted),
        budget=int(cfg.budget), population=int(cfg.population), mutation=float(cfg.mutation),
        crossover=float(cfg.crossover), rs_fraction=float(cfg.rs_fraction), max_batch=int(cfg.max_batch),
        seed=int(seed), amp=bool(cfg.amp), cache_unchanged=bool(cfg.get("cache_unchanged", True)))


def choose_targets(cfg: Any, labels: torch.Tensor, seed: int) -> torch.Tensor:
    """Per person: the named target category, or a random category outside its label set."""
    target = cfg.target
    if target is None:
        raise ConfigError("attack.targeted=true needs attack.target=<category name> or attack.target=random")
    if str(target) == "random":
        gen = torch.Generator().manual_seed(seed + 1)
        noise = torch.rand(labels.shape, generator=gen) + labels * 2.0  # label categories never win
        return noise.argmin(1)
    if str(target) not in CATEGORY_INDEX:
        raise ConfigError(f"attack.target={target!r} is not an EMOTIC category (one of {', '.join(CATEGORIES)}) or 'random'")
    return torch.full((labels.shape[0],), CATEGORY_INDEX[str(target)], dtype=torch.long)


def attack(cfg: DictConfig, run_dir: Path | None = None) -> dict[str, Any]:
    run_dir = Path(run_dir or output_dir())
    run_dir.mkdir(parents=True, exist_ok=True)
    a = cfg.attack
    settings = settings_from(a, int(cfg.seed))
    settings.check()
    if str(a.resolution) not in ("stored", "model"):
        raise ConfigError(f"attack.resolution={a.resolution!r} is not one of stored, model")
    device = select_device(str(cfg.device))
    dist = setup_distributed(device.type)  # under torchrun the persons are sharded across ranks by group
    try:
        return _attack(cfg, run_dir, settings, device, dist)
    finally:
        cleanup(dist)  # also when a rank fails, so the others are not left waiting


def _attack(cfg: DictConfig, run_dir: Path, settings: PixelAttackSettings, device: torch.device, dist: Any) -> dict[str, Any]:
    a = cfg.attack
    if dist.enabled and device.type == "cuda":
        device = torch.device("cuda", dist.local_rank)
    clean_path = clean_checkpoint(cfg)[0]
    model, model_cfg, _ = load_model(clean_path, device)
    model.eval()
    modalities = [str(m) for m in model_cfg.model.modalities]
    surface = "context" if settings.surface == "scene" else settings.surface
    if surface not in modalities:
        raise ConfigError(f"attack.surface={settings.surface!r}: the checkpoint's model has no {surface!r} stream "
                          f"(modalities {modalities})")
    store = open_store(cfg)
    check_store_fits_model(store, model_cfg.model)
    data = dataset(store, str(a.split), modalities)
    start = int(a.offset)
    stop = len(data) if a.persons is None else min(len(data), start + int(a.persons))
    if stop <= start:
        raise ConfigError(f"attack.offset={start}/attack.persons={a.persons}: no persons selected from {len(data)}")
    indices = list(range(start, stop))
    warm_text_features(model, [data])
    split = store[str(a.split)]

    rows, adversarial, clean_views = [], [], []
    started = time.time()
    group = int(a.images_per_batch)
    # rank r attacks groups r, r+W, ...: each group is seeded by itself, so sharding changes no result
    mine = list(range(0, len(indices), group))[dist.rank::dist.world_size]
    engine = PixelAttack(model, settings, device)  # stateless between groups: each run seeds itself
    with progress_bar(f"attack {settings.algorithm} k={settings.pixels}", total=sum(len(indices[g:g + group]) for g in mine),
                      unit="images") as advance:
        for g in mine:
            ids = indices[g:g + group]
            batch = data.__getitems__(ids)
            inputs = to_device(model_inputs(batch), device)
            if str(a.resolution) == "model":
                inputs = working_views(model, inputs)
            labels = batch["categories"]
            boxes, sizes = person_boxes(split, np.asarray(ids))
            target = choose_targets(a, labels, int(cfg.seed) + g) if settings.targeted else None
            result = engine.run(inputs, target, boxes, sizes)  # untargeted: away from its clean top-1
            adv = _adversarial_views(inputs, result.pixels.to(device), settings, boxes, sizes)
            adversarial.append({k: v.cpu().numpy() for k, v in adv.items()})
            clean_views.append({k: inputs[k].cpu().numpy() for k in adv})
            for i, person in enumerate(ids):
                label_set = [CATEGORIES[c] for c in labels[i].nonzero().flatten().tolist()]
                rows.append({
                    "index": person, "clean_top1": CATEGORIES[int(result.clean_top1[i])],
                    "adv_top1": CATEGORIES[int(result.adv_top1[i])],
                    "target": CATEGORIES[int(target[i])] if settings.targeted else "",
                    "success": bool(result.success[i]), "queries": int(result.queries[i]),
                    "clean_correct": CATEGORIES[int(result.clean_top1[i])] in label_set,
                    "labels": ";".join(label_set),
                    "pixels": ";".join(f"({x},{y},{r},{gg},{b})" for x, y, r, gg, b in result.pixels[i].tolist()),
                    "margin": float(result.margin[i]),
                    "confidence_before": float(result.clean_confidence[i]),
                    "confidence_after": float(result.adv_confidence[i]),
                })
            advance(len(ids))
    parts = gather_to_main((mine, rows, adversarial, clean_views), dist)
    if parts is None:  # not rank 0: rank 0 writes the files
        return {}
    order = sorted((g, p, i) for p, part in enumerate(parts) for i, g in enumerate(part[0]))  # person order
    adversarial = [parts[p][2][i] for _, p, i in order]
    clean_views = [parts[p][3][i] for _, p, i in order]
    rows = sorted((r for part in parts for r in part[1]), key=lambda r: r["index"])
    wall = time.time() - started
    table = pd.DataFrame(rows)
    summary = summarise(table, wall, settings, cfg)
    summary["persons_per_rank"] = [len(part[1]) for part in parts]  # torchrun: how the persons were sharded
    summary.update({"model": str(model_cfg.model.name), "modalities": modalities, "checkpoint": str(clean_path),
                    "resolution": str(a.resolution)})
    with atomic_file(run_dir / "attack.csv") as tmp:
        table.to_csv(tmp, index=False)
    with atomic_file(run_dir / "adversarial.npz") as tmp:
        np.savez_compressed(tmp, index=np.array(indices),
                            **{f"adv_{k}": np.concatenate([d[k] for d in adversarial]) for k in adversarial[0]},
                            pixels=np.stack([np.array(eval_pixels(p)) for p in table["pixels"]]))
    write_json_atomic(run_dir / "summary.json", summary)
    draw_examples(run_dir / "examples.png", table, clean_views, adversarial, surface, int(a.examples))
    print_table(f"pixel attack · {settings.algorithm} · k={settings.pixels} · {settings.surface} · "
                f"{'targeted' if settings.targeted else 'untargeted'}", ["metric", "value"],
                [["success (clean top-1 correct)", share_text(summary["success_rate_correct"], summary["persons_correct"])],
                 ["success (all persons)", f"{summary['success_rate_all']:.3f} of {summary['persons']}"],
                 ["median queries to success", summary["median_queries_success"]],
                 ["wall time (s)", f"{summary['wall_seconds']:.1f}"], ["queries/s", f"{summary['queries_per_s']:.0f}"]])
    return summary


def eval_pixels(text: str) -> list[list[int]]:
    return [[int(v) for v in p.strip("()").split(",")] for p in text.split(";")]


def summarise(table: pd.DataFrame, wall: float, s: PixelAttackSettings, cfg: Any) -> dict[str, Any]:
    correct = table[table["clean_correct"]]
    succeeded = table[table["success"]]
    return {
        "attack": "pixel", "algorithm": s.algorithm, "pixels": s.pixels, "surface": s.surface,
        "targeted": s.targeted, "target": cfg.attack.target, "budget": s.budget, "population": s.population,
        "split": str(cfg.attack.split), "seed": int(cfg.seed),
        "persons": int(len(table)), "persons_correct": int(len(correct)),
        "success_rate_all": float(table["success"].mean()),
        "success_rate_correct": float(correct["success"].mean()) if len(correct) else None,
        "mean_queries_success": float(succeeded["queries"].mean()) if len(succeeded) else None,
        "median_queries_success": float(succeeded["queries"].median()) if len(succeeded) else None,
        "total_queries": int(table["queries"].sum()), "wall_seconds": wall,
        "queries_per_s": float(table["queries"].sum() / max(wall, 1e-9)),
    }


def _adversarial_views(inputs: dict[str, torch.Tensor], pixels: torch.Tensor, s: PixelAttackSettings,
                       boxes: torch.Tensor | None, sizes: torch.Tensor | None) -> dict[str, torch.Tensor]:
    surface = "context" if s.surface == "scene" else s.surface
    out = {surface: paint(inputs[surface].clone(), pixels)}
    if s.surface == "scene":
        affine = scene_body_boxes(boxes, sizes, inputs["context"].shape[-1], inputs["body"].shape[-1]).to(pixels.device)
        out["body"] = paint_scene_body(inputs["body"].clone(), pixels, affine)
    return out


def draw_examples(path: Path, table: pd.DataFrame, clean: list[dict], adv: list[dict], surface: str, count: int) -> None:
    """Clean vs adversarial pictures of successful attacks, changed pixels circled, labels underneath."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    clean_all = np.concatenate([c[surface] for c in clean])
    adv_all = np.concatenate([d[surface] for d in adv])
    chosen = table.index[table["success"]].tolist()[:count] or table.index.tolist()[:count]
    if not chosen:
        return
    fig, axes = plt.subplots(2, len(chosen), figsize=(max(2.6 * len(chosen), 4.5), 5.6), squeeze=False)
    for col, i in enumerate(chosen):
        row = table.loc[i]
        for r, (img, title) in enumerate(((clean_all[i], f"clean: {row['clean_top1']}"),
                                          (adv_all[i], f"adv: {row['adv_top1']}"))):
            ax = axes[r][col]
            ax.imshow(np.transpose(img, (1, 2, 0)).astype(np.uint8))
            ax.set_xticks([])
            ax.set_yticks([])
            ax.set_xlabel(title, fontsize=8)
            if r == 1:
                for x, y, *_ in eval_pixels(row["pixels"]):
                    ax.add_patch(plt.Circle((x, y), radius=max(3, img.shape[-1] // 25), fill=False, color="red", lw=1.5))
    fig.suptitle(f"few-pixel attack on the {surface} view\n(top: clean, bottom: adversarial)", fontsize=9)
    fig.tight_layout()
    with atomic_file(path) as tmp:
        fig.savefig(tmp, dpi=80)
    plt.close(fig)


def main(cfg: DictConfig) -> dict[str, Any]:
    record_run("attack", cfg, int(cfg.seed))
    name = str(cfg.attack.name)
    if name == "pixel":
        return attack(cfg)
    from emotic_mm.stages import poison

    if name == "poison_backdoor":
        return poison.backdoor(cfg)
    if name == "poison_collision":
        return poison.collision(cfg)
    raise ConfigError(f"attack={name!r} is not one of pixel, poison_backdoor, poison_collision")
