"""Can a CNN trained from scratch learn one category's picture cue on its own?

    python scripts/probes/probe_cue_learnability.py --store data/prepared/synthetic_seed0 \
        --probe body:Confidence --probe context:Peace --epochs 5

The multi-label image-only model learns little of the synthetic default's small cues (README, "What the
image stream learns"). This probe separates the two possible causes — the objective (26 categories and
VAD sharing one small backbone) and the pictures themselves — by training, per ``view:Category`` pair,
a fresh ResNet-18 (the model's own :class:`~emotic_mm.models.encoders.ImageEncoder`, at its working
resolution) with one logit and a positive-weighted BCE on that category alone (flips as the trainer's
augmentation makes them). It reports train and val AP (eval's AP) per epoch next to the val prevalence
(chance): a cue the probe cannot learn on train is invisible at this resolution; one it learns on train
but not on val is one this many examples cannot generalise.
``--crop 0.2,0,0.8,0.3 --crop-from 128`` reads only a fixed head crop of the body view (cut from the
store's 128-px view, resized to ``--size``), as the face streams of some EMOTIC models do: whether
pointing the network at the face is enough. Prints a table and writes JSON (``--out``).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F


def view_tensor(array: np.ndarray, size: int, chunk: int = 256) -> torch.Tensor:
    """(N, H, W, 3) uint8 → (N, 3, size, size) float pixels in [0, 255], resized as the encoder resizes."""
    from emotic_mm.models.encoders import resize_view

    parts = [
        resize_view(torch.from_numpy(np.array(array[i : i + chunk])).permute(0, 3, 1, 2), size)
        for i in range(0, len(array), chunk)
    ]
    return torch.cat(parts)


def crop_view(x: torch.Tensor, box: tuple[float, float, float, float], size: int) -> torch.Tensor:
    """The ``box`` (x0, y0, x1, y1 as fractions of the view) of every picture, resized to ``size`` × ``size``:
    a fixed head crop of the body view, the way face streams of EMOTIC models read a face."""
    h, w = x.shape[-2:]
    x0, y0, x1, y1 = int(box[0] * w), int(box[1] * h), round(box[2] * w), round(box[3] * h)
    return F.interpolate(
        x[:, :, y0:y1, x0:x1], size=(size, size), mode="bilinear", align_corners=False, antialias=True
    )


def average_precision(model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor, chunk: int = 256) -> float:
    """The model's AP on (x, y): torchmetrics' binary AP, what ``emotic-mm eval``'s per-category AP is for
    one category."""
    from torchmetrics.functional.classification import binary_average_precision

    model.eval()
    with torch.no_grad():
        scores = torch.cat([model(x[i : i + chunk]).squeeze(1) for i in range(0, len(x), chunk)])
    return float(binary_average_precision(scores, y.long()))


def probe(
    store: Path,
    view: str,
    category: str,
    size: int,
    epochs: int,
    batch_size: int,
    lr: float,
    seed: int,
    crop: tuple[float, float, float, float] | None = None,
    crop_from: int | None = None,
) -> dict[str, Any]:
    from emotic_mm.data.categories import CATEGORIES
    from emotic_mm.data.store import Store
    from emotic_mm.errors import ConfigError
    from emotic_mm.models.encoders import ImageEncoder
    from emotic_mm.training.augment import augment_batch

    if category not in CATEGORIES:
        raise ConfigError(f"--probe {view}:{category}: not one of the 26 categories")
    if view not in ("context", "body"):
        raise ConfigError(f"--probe {view}:{category}: the view is context or body")
    data = Store(store)
    j = CATEGORIES.index(category)
    if crop is None:
        x = {s: view_tensor(getattr(data[s], view), size) for s in ("train", "val")}
    else:
        x = {
            s: crop_view(view_tensor(getattr(data[s], view), crop_from or size), crop, size)
            for s in ("train", "val")
        }
    y = {s: torch.from_numpy(np.asarray(data[s].categories[:, j], np.float32)) for s in ("train", "val")}
    if y["train"].sum() == 0 or y["val"].sum() == 0:
        raise ConfigError(f"--probe {view}:{category}: no positive in train or val")
    torch.manual_seed(seed)
    encoder = ImageEncoder("resnet18", input_size=size)
    model = torch.nn.Sequential(encoder, torch.nn.Linear(encoder.out_dim, 1))
    optimizer = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=1e-4)
    pos_weight = (1 - y["train"].mean()) / y["train"].mean()
    generator = torch.Generator().manual_seed(seed)
    history = []
    for epoch in range(epochs):
        model.train()
        started = time.time()
        for idx in torch.randperm(len(y["train"]), generator=generator).split(batch_size):
            batch = augment_batch(
                {view: x["train"][idx]}, flip=True, brightness=0.0, contrast=0.0, generator=generator
            )[view]
            loss = F.binary_cross_entropy_with_logits(
                model(batch).squeeze(1), y["train"][idx], pos_weight=pos_weight
            )
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
        history.append(
            {
                "epoch": epoch + 1,
                "train_ap": average_precision(model, x["train"], y["train"]),
                "val_ap": average_precision(model, x["val"], y["val"]),
                "seconds": time.time() - started,
            }
        )
        print(
            f"  {view}:{category} epoch {epoch + 1}: train AP {history[-1]['train_ap']:.3f} "
            f"val AP {history[-1]['val_ap']:.3f}",
            flush=True,
        )
    return {
        "view": view,
        "category": category,
        "size": size,
        "crop": crop,
        "crop_from": crop_from,
        "train_positives": int(y["train"].sum()),
        "val_positives": int(y["val"].sum()),
        "val_prevalence": float(y["val"].mean()),
        "history": history,
        "best_val_ap": max(h["val_ap"] for h in history),
    }


def main(argv: list[str] | None = None) -> list[dict[str, Any]]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--store", type=Path, required=True)
    parser.add_argument("--probe", action="append", required=True, metavar="VIEW:CATEGORY")
    parser.add_argument("--size", type=int, default=64, help="the working resolution (the default model's)")
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--crop",
        metavar="X0,Y0,X1,Y1",
        help="read only this box of the view (fractions), "
        "resized to --size: e.g. 0.2,0,0.8,0.3 is a head crop of the body view",
    )
    parser.add_argument(
        "--crop-from", type=int, help="the view's resolution the crop is cut from (default --size)"
    )
    parser.add_argument("--out", type=Path, default=Path("bench_results/probe_cue_learnability.json"))
    args = parser.parse_args(argv)
    from emotic_mm.errors import ConfigError, EmoticMMError
    from emotic_mm.fsutil import write_json_atomic

    try:
        crop = None
        if args.crop:
            try:
                crop = tuple(float(v) for v in args.crop.split(","))
            except ValueError:
                crop = ()
            if len(crop) != 4 or not (0 <= crop[0] < crop[2] <= 1 and 0 <= crop[1] < crop[3] <= 1):
                raise ConfigError(
                    f"--crop {args.crop}: four fractions x0,y0,x1,y1 "
                    "with 0 <= x0 < x1 <= 1 and 0 <= y0 < y1 <= 1"
                )
        results = []
        for spec in args.probe:
            view, _, category = spec.partition(":")
            results.append(
                probe(
                    args.store,
                    view,
                    category,
                    args.size,
                    args.epochs,
                    args.batch_size,
                    args.lr,
                    args.seed,
                    crop,
                    args.crop_from,
                )
            )
    except EmoticMMError as exc:
        print(f"error: {exc}", file=sys.stderr)
        sys.exit(2)
    print(f"\n{'probe':28s} {'train pos':>9s} {'val prev':>8s} {'best val AP':>11s} {'last train AP':>13s}")
    for r in results:
        print(
            f"{r['view'] + ':' + r['category']:28s} {r['train_positives']:9d} {r['val_prevalence']:8.3f} "
            f"{r['best_val_ap']:11.3f} {r['history'][-1]['train_ap']:13.3f}"
        )
    args.out.parent.mkdir(parents=True, exist_ok=True)
    write_json_atomic(args.out, results)
    return results


if __name__ == "__main__":
    main()
