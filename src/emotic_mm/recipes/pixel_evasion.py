"""``attack=pixel``: few-pixel evasion against a clean model.

Recipe: runtime → clean model (given or cached) → persons of the split → run the batched engine group
by group (the engine returns the adversarial views and their pixels) → ``attack.csv``, ``summary.json``,
``adversarial.npz``, ``examples.png``. Under torchrun the groups are sharded across ranks and gathered
on rank 0, which writes the files.
"""

from __future__ import annotations

import logging
import math
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from omegaconf import DictConfig

from emotic_mm import figures
from emotic_mm.attacks.pixel import PixelAttack, PixelAttackSettings
from emotic_mm.attacks.surface import check_surface, painted_view
from emotic_mm.attacks.vote_attack import (
    VoteTarget,
    certified_counts,
    check_vote_attack,
    confirmer,
    read_certificates,
    smoothed_votes,
    soundness,
    with_certified_clean,
)
from emotic_mm.config import real_number, whole_number
from emotic_mm.data.access import dataset, person_boxes, store_for_model
from emotic_mm.data.batches import model_inputs, to_device
from emotic_mm.data.categories import CATEGORIES, CATEGORY_INDEX
from emotic_mm.defenses.registry import defense_of
from emotic_mm.errors import ConfigError
from emotic_mm.fsutil import atomic_file, write_json_atomic
from emotic_mm.measures import median_needed, median_pixels
from emotic_mm.models.loading import load_model
from emotic_mm.models.warming import warm_text_features
from emotic_mm.progress import print_table, progress_bar, share_text
from emotic_mm.recipes.clean_model import clean_checkpoint, clean_split_metrics
from emotic_mm.runinfo import output_dir
from emotic_mm.training.distributed import gather_to_main
from emotic_mm.training.runtime import runtime

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
    """The engine's settings from the ``attack`` block, validated (``pixels``: the largest k of the schedule,
    which bounds memory)."""
    settings = PixelAttackSettings(
        pixels=pixel_schedule(cfg)[-1],
        surface=str(cfg.surface),
        algorithm=str(cfg.algorithm),
        targeted=bool(cfg.targeted),
        budget=whole_number(cfg.budget, "attack.budget", 1),
        population=whole_number(cfg.population, "attack.population", 1),
        mutation=real_number(cfg.mutation, "attack.mutation", 0.0),
        crossover=real_number(cfg.crossover, "attack.crossover", 0.0, 1.0),
        rs_fraction=real_number(cfg.rs_fraction, "attack.rs_fraction", 0.0, 1.0),
        max_batch=None if cfg.max_batch is None else whole_number(cfg.max_batch, "attack.max_batch", 1),
        seed=int(seed),
        amp=bool(cfg.amp),
        cache_unchanged=bool(cfg.get("cache_unchanged", True)),
    )
    whole_number(cfg.images_per_batch, "attack.images_per_batch", 1)
    whole_number(cfg.offset, "attack.offset", 0)
    if cfg.persons is not None:
        whole_number(cfg.persons, "attack.persons", 1)
    settings.check()
    if settings.targeted or cfg.get("target") is not None:  # a bogus target is refused even when unused
        check_target(cfg.get("target"))
    return settings


def attacked_persons(a: DictConfig, total: int, certificates: pd.DataFrame | None) -> list[int]:
    """The split's persons to attack: ``attack.persons`` of them from ``attack.offset`` on. With
    ``attack.certificates`` they are counted among the certified persons only (``certify_persons`` may be a
    random subset), so that every attacked person's certificate is checked."""
    pool = list(range(total)) if certificates is None else sorted(int(i) for i in certificates["index"])
    if certificates is not None and (not pool or pool[-1] >= total):
        raise ConfigError(
            f"attack.certificates={a.certificates}: its persons are not persons of the {a.split} split "
            f"({total} persons)"
        )
    start = int(a.offset)
    stop = len(pool) if a.persons is None else min(len(pool), start + int(a.persons))
    if stop <= start:
        raise ConfigError(
            f"attack.offset={start}/attack.persons={a.persons}: no persons selected from {len(pool)}"
        )
    return pool[start:stop]


def check_target(target: Any) -> str:
    """``attack.target``: a category name or ``random``."""
    if target is None:
        raise ConfigError("attack.targeted=true needs attack.target=<category name> or attack.target=random")
    if str(target) != "random" and str(target) not in CATEGORY_INDEX:
        raise ConfigError(
            f"attack.target={target!r} is not an EMOTIC category (one of {', '.join(CATEGORIES)}) or 'random'"
        )
    return str(target)


def choose_targets(cfg: Any, labels: torch.Tensor, seed: int) -> torch.Tensor:
    """Per person: the named target category, or a random category outside its label set."""
    target = check_target(cfg.target)
    if target == "random":
        gen = torch.Generator().manual_seed(seed + 1)
        noise = torch.rand(labels.shape, generator=gen) + labels * 2.0  # label categories never win
        return noise.argmin(1)
    return torch.full((labels.shape[0],), CATEGORY_INDEX[target], dtype=torch.long)


def format_pixels(pixels: np.ndarray) -> str:
    """The CSV's readable column: ``(x,y,r,g,b);…`` (``adversarial.npz`` holds the integer array)."""
    return ";".join(f"({x},{y},{r},{g},{b})" for x, y, r, g, b in pixels.tolist())


def run(cfg: DictConfig, run_dir: Path | None = None) -> dict[str, Any]:
    """One run into ``run_dir`` (default: Hydra's run dir); returns what ``summary.json`` holds."""
    a = cfg.attack
    settings = settings_from(a, int(cfg.seed))
    if str(a.resolution) not in ("stored", "model"):
        raise ConfigError(f"attack.resolution={a.resolution!r} is not one of stored, model")
    run_dir = Path(run_dir or output_dir())
    run_dir.mkdir(parents=True, exist_ok=True)
    with runtime(str(cfg.device)) as rt:  # under torchrun the persons are sharded across ranks by group
        return _run(cfg, run_dir, settings, rt.device, rt.dist)


def _run(
    cfg: DictConfig, run_dir: Path, settings: PixelAttackSettings, device: torch.device, dist: Any
) -> dict[str, Any]:
    a = cfg.attack
    clean_path = clean_checkpoint(cfg)[0]
    model, model_cfg, _ = load_model(clean_path, device)
    model.eval()
    modalities = [str(m) for m in model_cfg.model.modalities]
    check_surface(settings.surface, modalities)
    store = store_for_model(cfg, model_cfg, clean_path)
    data = dataset(store, str(a.split), modalities)
    vote = vote_target(
        cfg, model_cfg, settings
    )  # an ablation checkpoint: attack its certified vote classifier
    certificates = None
    if a.get("certificates") is not None:  # read first: a bad file is one line before any query
        if vote is None:
            raise ConfigError(
                f"attack.certificates={a.certificates}: the checkpoint has no certified "
                f"(randomized-ablation) classifier to check the certificates against"
            )
        certificates = read_certificates(a.certificates)
    indices = attacked_persons(a, len(data), certificates)
    warm_text_features(model, [data])
    split = store[str(a.split)]
    surface = painted_view(settings.surface)

    rows, adversarial, pixels = [], [], []
    started = time.time()
    group = int(a.images_per_batch)
    # rank r attacks groups r, r+W, ...: each group is seeded by itself, so sharding changes no result
    mine = list(range(0, len(indices), group))[dist.rank :: dist.world_size]
    engine = PixelAttack(vote.query(model) if vote else model, settings, device)  # stateless between groups
    ks = pixel_schedule(a)
    with progress_bar(
        f"attack {settings.algorithm} k={','.join(map(str, ks))}",
        total=sum(len(indices[g : g + group]) for g in mine),
        unit="images",
    ) as advance:
        for g in mine:
            ids = indices[g : g + group]
            batch = data.__getitems__(ids)
            inputs = to_device(model_inputs(batch), device)
            if str(a.resolution) == "model":
                inputs = working_views(model, inputs)
            labels = batch["categories"]
            boxes, sizes = person_boxes(split, np.asarray(ids))
            target = choose_targets(a, labels, int(cfg.seed) + g) if settings.targeted else None
            if vote is None:
                result = engine.run_schedule(
                    inputs, ks, target, boxes, sizes
                )  # untargeted: away from the clean top-1
                margins = clean_margins(model, inputs)
            else:
                result = attack_votes(engine, vote, model, inputs, ids, ks, target)
                margins = None  # a vote classifier's answer has no logit margin
            adversarial.append({k: v.cpu().numpy() for k, v in result.views.items()})
            pixels.append(result.pixels.numpy())
            rows.extend(person_rows(ids, labels, result, target, margins))
            advance(len(ids))
    parts = gather_to_main((mine, rows, adversarial, pixels), dist)
    if parts is None:  # not rank 0: rank 0 writes the files
        return {}
    order = sorted((g, p, i) for p, part in enumerate(parts) for i, g in enumerate(part[0]))  # person order
    adv = (
        {k: np.concatenate([parts[p][2][i][k] for _, p, i in order]) for k in parts[0][2][0]} if order else {}
    )
    pixel_array = np.concatenate([parts[p][3][i] for _, p, i in order])
    rows = sorted((r for part in parts for r in part[1]), key=lambda r: r["index"])
    wall = time.time() - started
    table = pd.DataFrame(rows)
    summary = summarise(table, ks, wall, settings, cfg)
    summary["persons_per_rank"] = [len(part[1]) for part in parts]  # torchrun: how the persons were sharded
    summary.update(
        {
            "model": str(model_cfg.model.name),
            "modalities": modalities,
            "checkpoint": str(clean_path),
            "resolution": str(a.resolution),
            "defense": defense_of(model_cfg)[0].name,
            "clean_map": clean_split_metrics(cfg, clean_path, model, data, device)["map"],
            "clean_map_persons": len(data),
        }
    )
    if certificates is not None:  # the certificate's soundness check, person by person
        summary["soundness"] = soundness(certificates, table, ks)
        summary["certified"] = certified_counts(certificates, table)
    if vote is not None:
        summary["smoothed"] = {
            "keep": vote.certification.keep,
            "query_samples": vote.query_samples,
            "judged_samples": vote.certification.selection_samples,
            "seed": vote.certification.seed,
            "query_seed": vote.query_seed,
        }
    with atomic_file(run_dir / "attack.csv") as tmp:
        table.to_csv(tmp, index=False)
    with atomic_file(
        run_dir / "adversarial.npz"
    ) as tmp:  # pixels: (N, max k, 5), rows of -1 where k was smaller
        np.savez_compressed(
            tmp,
            index=np.array(indices),
            pixels=pixel_array,
            pixels_needed=table["pixels_needed"].fillna(0).to_numpy(int),
            **{f"adv_{k}": v for k, v in adv.items()},
        )
    write_json_atomic(run_dir / "summary.json", summary)
    chosen = (
        table.index[table["success"]].tolist()[: int(a.examples)] or table.index.tolist()[: int(a.examples)]
    )
    clean = to_device(
        model_inputs(data.__getitems__([indices[i] for i in chosen])), device
    )  # only what is drawn
    clean = working_views(model, clean) if str(a.resolution) == "model" else clean
    figures.pixel_examples(
        run_dir / "examples.png",
        clean[surface].cpu().numpy(),
        adv[surface][chosen],
        [p[p[:, 0] >= 0] for p in pixel_array[chosen]],
        table.loc[chosen, "clean_top1"].tolist(),
        table.loc[chosen, "adv_top1"].tolist(),
        surface,
    )
    _print(summary)
    return summary


def vote_target(cfg: Any, model_cfg: Any, settings: PixelAttackSettings) -> VoteTarget | None:
    """For a checkpoint trained with a certifiable defense (randomized ablation): how to query and judge its
    vote classifier (the certification's settings with this run's ``defense.*`` overrides); else None."""
    if not defense_of(model_cfg)[0].acts("certify"):
        return None
    from omegaconf import OmegaConf

    from emotic_mm.recipes.certification import settings_for

    check_vote_attack(settings.surface, str(cfg.attack.resolution))
    overrides = OmegaConf.to_container(cfg.get("defense") or {}, resolve=True)
    return VoteTarget.from_config(
        settings_for(model_cfg, overrides), cfg.attack.get("vote_samples"), settings.seed
    )


def attack_votes(
    engine: PixelAttack,
    vote: VoteTarget,
    model: Any,
    inputs: dict[str, torch.Tensor],
    ids: list[int],
    ks: list[int],
    target: torch.Tensor | None,
) -> Any:
    """The k-schedule against the vote classifier: the body crop and description enter as the certificate's
    fixed features, the search moves away from the certified prediction (untargeted), and every level's
    outcome is judged again with the certification's sampling."""
    from emotic_mm.recipes.certification import fixed_features

    fixed = fixed_features(model, inputs, vote.certification.keep, vote.certification.seed, ids)
    judge = vote.judge(model)
    clean_votes = smoothed_votes(judge, inputs["context"], fixed)
    label = target if target is not None else clean_votes.argmax(1)
    result = engine.run_schedule(
        {"context": inputs["context"], **fixed},
        ks,
        label.to(inputs["context"].device),
        confirm=confirmer(judge, fixed, clean_votes, target),
    )
    return with_certified_clean(result, clean_votes)


def pixel_schedule(a: Any) -> list[int]:
    """``attack.pixels``: one k or a list of them (the curve), validated, ascending."""
    from omegaconf import OmegaConf

    values = OmegaConf.to_object(a.pixels) if OmegaConf.is_list(a.pixels) else [a.pixels]
    if not values:
        raise ConfigError("attack.pixels=[] names no pixel budget")
    return sorted({whole_number(v, "attack.pixels", 1) for v in values})


@torch.no_grad()
def clean_margins(model: torch.nn.Module, inputs: dict[str, torch.Tensor]) -> torch.Tensor:
    """Each person's clean top-1 logit minus the second: a model whose answers are near ties flips
    easily, so success means little without this beside it."""
    from emotic_mm.training.metrics import top1_margins

    return top1_margins(model(inputs)["logits"]).cpu()


def person_rows(
    ids: list[int],
    labels: torch.Tensor,
    result: Any,
    target: torch.Tensor | None,
    margins: torch.Tensor | None = None,
) -> list[dict[str, Any]]:
    """attack.csv: one row per person, with its outcome at every k of the schedule."""
    rows = []
    for i, person in enumerate(ids):
        label_set = [CATEGORIES[c] for c in labels[i].nonzero().flatten().tolist()]
        clean_top1 = CATEGORIES[int(result.clean_top1[i])]
        needed = int(result.pixels_needed[i])
        px = result.pixels[i].numpy()
        row = {
            "index": person,
            "clean_top1": clean_top1,
            "clean_correct": clean_top1 in label_set,
            "labels": ";".join(label_set),
            "target": CATEGORIES[int(target[i])] if target is not None else "",
            "pixels_needed": needed if needed else None,
            "queries": int(result.queries[i]),
            "success": bool(result.success[i, -1]),
            "adv_top1": CATEGORIES[int(result.adv_top1[i, -1])],
            "pixels": format_pixels(px[px[:, 0] >= 0]),
            "margin": float(result.margin[i]),
            "confidence_before": float(result.clean_confidence[i]),
            "confidence_after": float(result.adv_confidence[i]),
            "clean_margin": float(margins[i]) if margins is not None else None,
        }
        for j, k in enumerate(result.ks):
            top1 = CATEGORIES[int(result.adv_top1[i, j])]
            # robust: right on the clean picture and still right under the attack (a person the model already
            # gets wrong is not robust, even when the search happens to move its answer into the label set)
            row.update(
                {
                    f"success_k{k}": bool(result.success[i, j]),
                    f"adv_top1_k{k}": top1,
                    f"robust_k{k}": row["clean_correct"] and top1 in label_set,
                }
            )
        rows.append(row)
    return rows


def _print(summary: dict[str, Any]) -> None:
    rows = []
    for point in summary["curve"]:
        rows.append(
            [
                str(point["pixels"]),
                share_text(point["success_rate_all"], summary["persons"]),
                share_text(point["success_rate_correct"], summary["persons_correct"]),
                f"{point['robust_dominant_accuracy']:.3f}",
                "–" if point["median_queries_success"] is None else f"{point['median_queries_success']:.0f}",
            ]
        )
    sound = summary.get("soundness")
    if sound:
        print(
            f"certificate soundness: {sound['violations']} of {sound['checked_person_k']} "
            f"(person, k ≤ radius) pairs fooled "
            f"({sound['certified_persons']} of {sound['persons']} persons certified)"
            + (
                ""
                if sound["sound"]
                else f" — the certificate is WRONG for persons {sound['violating_persons']}"
            )
        )
    needed = summary[
        "median_pixels_needed_all"
    ]  # None: the median person was not fooled within the largest k
    print_table(
        f"pixel attack · {summary['algorithm']} · {summary['surface']} · "
        f"{'targeted' if summary['targeted'] else 'untargeted'} · clean dominant acc "
        f"{summary['clean_dominant_accuracy']:.3f} of {summary['persons']} · median pixels needed "
        f"{median_pixels(math.inf if needed is None else needed, max(summary['pixels']))}",
        ["k", "success (all)", "success (clean-correct)", "robust dominant acc", "median queries"],
        rows,
    )
    quartiles = summary.get("clean_margin_quartiles")
    if quartiles:
        print(
            f"clean top-1 margin (logits) of the {summary['persons']} persons: quartiles "
            + " / ".join(f"{q:.3f}" for q in quartiles)
        )


def summarise(
    table: pd.DataFrame, ks: list[int], wall: float, s: PixelAttackSettings, cfg: Any
) -> dict[str, Any]:
    """summary.json: the settings, then the curve (per k: success on all and on the clean-correct persons,
    robust dominant accuracy, queries to success) and the median pixels needed, each with its n."""
    correct = table["clean_correct"].astype(bool)
    curve = []
    for k in ks:
        hit = table[f"success_k{k}"].astype(bool)
        fooled = table.loc[hit]
        curve.append(
            {
                "pixels": k,
                "successes": int(hit.sum()),
                "successes_correct": int((hit & correct).sum()),
                "success_rate_all": float(hit.mean()),
                "success_rate_correct": float(hit[correct].mean()) if correct.any() else None,
                "robust_correct": int(table[f"robust_k{k}"].sum()),
                "robust_dominant_accuracy": float(table[f"robust_k{k}"].mean()),
                "mean_queries_success": float(fooled["queries"].mean()) if len(fooled) else None,
                "median_queries_success": float(fooled["queries"].median()) if len(fooled) else None,
            }
        )
    last = curve[-1]
    return {
        "attack": "pixel",
        "algorithm": s.algorithm,
        "pixels": ks,
        "surface": s.surface,
        "targeted": s.targeted,
        "target": cfg.attack.target if s.targeted else None,
        "budget": s.budget,
        "population": s.population,
        "split": str(cfg.attack.split),
        "offset": int(cfg.attack.offset),
        "seed": int(cfg.seed),
        "persons": int(len(table)),
        "persons_correct": int(correct.sum()),
        "clean_dominant_accuracy": float(correct.mean()),
        "clean_margin_quartiles": _quartiles(table.get("clean_margin")),
        "curve": curve,
        "median_pixels_needed_all": _finite(median_needed(table["pixels_needed"].to_numpy(float))),
        "median_pixels_needed_correct": _finite(
            median_needed(table.loc[correct, "pixels_needed"].to_numpy(float))
        ),
        "success_rate_all": last["success_rate_all"],
        "success_rate_correct": last["success_rate_correct"],
        "mean_queries_success": last["mean_queries_success"],
        "median_queries_success": last["median_queries_success"],
        "total_queries": int(table["queries"].sum()),
        "wall_seconds": wall,
        "queries_per_s": float(table["queries"].sum() / max(wall, 1e-9)),
    }


def _quartiles(values: pd.Series | None) -> list[float] | None:
    """25th, 50th and 75th percentiles of the persons' clean top-1 margins (``None`` without margins)."""
    finite = pd.to_numeric(values, errors="coerce").dropna() if values is not None else pd.Series(dtype=float)
    return [float(q) for q in finite.quantile([0.25, 0.5, 0.75])] if len(finite) else None


def _finite(value: float) -> float | None:
    """JSON has no ∞ or NaN: ``None`` for "more than the largest k" or "no persons"."""
    return value if np.isfinite(value) else None
