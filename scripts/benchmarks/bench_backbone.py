"""Benchmark the default image encoder against the from-scratch ResNet-18, on the same machine in one run.

What it measures
    For each encoder config (``model/image_encoder=efficientnet_lite0``, the default: a frozen shipped
    EfficientNet-Lite0 whose features are memoised; ``model/image_encoder=resnet18``: a ResNet-18 trained
    from scratch at 64 px), on the image-only baseline (context + body) of one store:

    * **setup** — seconds to compute the fixed backbone's features of every training picture, its mirror
      image and every val picture (``warm_image_features``, as ``emotic-mm train`` does; 0 for a
      backbone that learns);
    * **train** — images/s of the project's training step (``Trainer._train_epoch``: augment, forward,
      loss, backward, optimizer step) over ``--train-batches`` batches of the real loader;
    * **epochs** — images/s of a whole ``--epochs``-epoch training run of the store's train split, the
      setup included: ``persons × epochs / (setup + persons × epochs / train)``;
    * **attack** — queries/s of ``PixelAttack`` (rs, ``--pixels`` pixels of the context view at the
      encoder's working resolution, ``--budget`` queries per person) on ``--persons`` test persons, an
      untrained model of that config (throughput only: success is not what is measured here).

    Ratios are Lite0 ÷ ResNet-18. The two configs alternate over ``--repeats`` rounds (A B | B A ...), so
    a drift of the background load hits both sides; the medians over rounds are reported.

How to run
    HF_HUB_OFFLINE=1 .venv/bin/python scripts/benchmarks/bench_backbone.py \\
        --store data/prepared/synthetic_seed0
    # options: --repeats 2 --train-batches 8 --epochs 8 --persons 8 --pixels 3 --budget 200
    #          --threads N --out bench_results/backbone.json
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from benchlib import machine_info, write_report  # noqa: E402

ENCODERS = ("efficientnet_lite0", "resnet18")


def compose(store: str, encoder: str) -> Any:
    from hydra import compose as hydra_compose
    from hydra import initialize_config_dir

    from emotic_mm.config import configs_dir

    with initialize_config_dir(config_dir=str(configs_dir()), version_base="1.3"):
        return hydra_compose(
            config_name="train",
            overrides=[
                f"data.prepared_dir={store}",
                "model=baseline",
                "model.modalities=[context,body]",
                f"model/image_encoder={encoder}",
                "trainer.workers=0",
                "trainer.tensorboard=false",
            ],
        )


def measure(store: str, encoder: str, args: argparse.Namespace) -> dict[str, float]:
    """One round of one encoder config: setup seconds, train images/s, attack queries/s."""
    from emotic_mm.attacks.pixel import PixelAttack, PixelAttackSettings
    from emotic_mm.data.access import dataset, store_for_model
    from emotic_mm.data.batches import model_inputs, to_device
    from emotic_mm.models.factory import build_model
    from emotic_mm.models.warming import warm_image_features
    from emotic_mm.training.distributed import DistInfo
    from emotic_mm.training.losses import build_objective
    from emotic_mm.training.runtime import make_loader
    from emotic_mm.training.trainer import Trainer

    cfg = compose(store, encoder)
    device = torch.device("cpu")
    opened = store_for_model(cfg, cfg)
    train_set, val_set = (
        dataset(opened, "train", ["context", "body"]),
        dataset(opened, "val", ["context", "body"]),
    )
    torch.manual_seed(0)
    model = build_model(cfg.model)
    started = time.perf_counter()
    warm_image_features(model, [(train_set, bool(cfg.trainer.augment.flip)), (val_set, False)])
    setup = time.perf_counter() - started

    batch = int(cfg.trainer.batch_size)
    subset = torch.utils.data.Subset(train_set, list(range(min(len(train_set), batch * args.train_batches))))
    loader = make_loader(subset, batch, 0, device, True, 0, DistInfo(), drop_last=True)
    trainer = Trainer(
        model,
        build_objective(cfg.loss),
        cfg.trainer,
        cfg,
        Path(args.workdir),
        DistInfo(),
        device,
        steps_per_epoch=len(loader),
    )
    trainer._train_epoch(loader, 0)  # warm-up: allocator, first-call costs
    started = time.perf_counter()
    _, _, images = trainer._train_epoch(loader, 0)
    train_rate = images / (time.perf_counter() - started)
    persons = len(train_set) * args.epochs
    epochs_rate = persons / (setup + persons / train_rate)

    model.eval()
    test = dataset(opened, "test", ["context", "body"])
    batch_dict = to_device(model_inputs(test.__getitems__(list(range(min(args.persons, len(test)))))), device)
    views = {
        k: (model.image_encoders[k].working_view(v) if k in model.image_encoders else v)
        for k, v in batch_dict.items()
    }
    settings = PixelAttackSettings(
        pixels=args.pixels, algorithm="rs", budget=args.budget, population=20, seed=0
    )
    started = time.perf_counter()
    result = PixelAttack(model, settings, device).run(views)
    attack_rate = float(result.queries.sum()) / (time.perf_counter() - started)
    return {
        "setup_s": setup,
        "train_images_per_s": train_rate,
        "epochs_images_per_s": epochs_rate,
        "attack_queries_per_s": attack_rate,
        "train_persons": len(train_set),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--store", default="data/prepared/synthetic_seed0")
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--train-batches", type=int, default=8)
    ap.add_argument("--epochs", type=int, default=8, help="epochs over which the setup is amortised")
    ap.add_argument("--persons", type=int, default=8)
    ap.add_argument("--pixels", type=int, default=3)
    ap.add_argument("--budget", type=int, default=200)
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--workdir", default="outputs/bench_backbone")
    ap.add_argument("--out", default="bench_results/backbone.json")
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    Path(args.workdir).mkdir(parents=True, exist_ok=True)
    rounds: dict[str, list[dict[str, float]]] = {e: [] for e in ENCODERS}
    for r in range(args.repeats):
        for encoder in ENCODERS if r % 2 == 0 else ENCODERS[::-1]:
            rounds[encoder].append(measure(args.store, encoder, args))
            print(f"round {r + 1} {encoder}: {rounds[encoder][-1]}", flush=True)
    keys = ("setup_s", "train_images_per_s", "epochs_images_per_s", "attack_queries_per_s")
    medians = {e: {k: statistics.median(x[k] for x in rounds[e]) for k in keys} for e in ENCODERS}
    ratios = {k: medians[ENCODERS[0]][k] / medians[ENCODERS[1]][k] for k in keys[1:]}

    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"image encoders on {Path(args.store).name} (median of {args.repeats} rounds)")
    for column in ("encoder", "setup s", "train img/s", f"{args.epochs}-epoch img/s", "attack queries/s"):
        table.add_column(column, justify="right")
    for e in ENCODERS:
        m = medians[e]
        table.add_row(
            e,
            f"{m['setup_s']:.1f}",
            f"{m['train_images_per_s']:.1f}",
            f"{m['epochs_images_per_s']:.1f}",
            f"{m['attack_queries_per_s']:.1f}",
        )
    table.add_row(
        "ratio",
        "",
        f"{ratios['train_images_per_s']:.2f}",
        f"{ratios['epochs_images_per_s']:.2f}",
        f"{ratios['attack_queries_per_s']:.2f}",
    )
    Console().print(table)
    write_report(
        args.out,
        "backbone",
        machine_info(("timm", "torchvision"), torch.device("cpu")),
        {"settings": vars(args), "rounds": rounds, "medians": medians, "ratios_lite0_over_resnet18": ratios},
    )


if __name__ == "__main__":
    main()
