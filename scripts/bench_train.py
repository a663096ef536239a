"""Benchmark the training input pipeline: the real DataLoader vs the same steps on in-memory tensors.

What it measures
    Optimizer steps/s and images/s of the project's own training step — ``Trainer._train_epoch``
    (to_device, augment, autocast, forward, loss, backward, clip, optimizer + scheduler step, the
    ``float(loss)`` sync and the progress update), driven through a real :class:`Trainer` built the way
    ``emotic-mm train`` builds it (Hydra-composed ``train`` config, ``build_model``,
    ``warm_text_features``, ``build_objective``) — fed in two modes:

    * **loader** — batches from ``make_loader(EmoticDataset(store['train']), ...)`` exactly as
      ``stages/train.py`` makes it (DistributedSampler shuffle, ``trainer.workers`` processes,
      persistent workers, pin_memory on CUDA, ``drop_last`` when the split exceeds a batch). Each timed
      window starts a fresh epoch of the loader (as each training epoch does), runs ``--warmup`` untimed
      steps, then times ``--steps`` steps; when a window outlasts an epoch it rolls over into the next
      one, as training does (the JSON counts these epoch starts inside the timed window).
    * **memory** — the same number of batches, materialised once (untimed) from the same loader and kept
      as tensors (on the training device when it is CUDA, so that mode has no input pipeline at all),
      replayed through the identical step.

    ``ratio = steps/s(loader) / steps/s(memory)``. The goal is ratio >= 0.95: the input pipeline costs
    the training loop at most 5 %. The script also records the time the step spent blocked in
    ``next(loader)`` ("data wait"); ``1 - wait/total`` bounds the ratio if the loader work did not also
    slow the compute down (on a small CPU, workers and torch's intra-op threads share the cores, so the
    loader can cost more than its wait time).

    On CUDA (``torch.cuda.is_available()``) a second configuration runs with AMP bf16 and channels_last
    (``trainer.precision=bf16 trainer.channels_last=true``) next to the default fp32 one; the device is
    synchronised before and after every timed window.

Why ratios, measured in one run
    Absolute steps/s depend on the machine and, on a shared 2-core box, on whatever else runs. The
    claim under test is relative, so both modes are measured in one process, interleaved
    (A B A B ... for ``--repeats`` rounds, same model and optimizer), and each mode's median is taken:
    slow drift in the background load hits both modes alike and cancels in the ratio. The per-round
    paired ratios are in the JSON too, as a check on how much noise is left.

How to run
    cd /work/main && HF_HUB_OFFLINE=1 .venv/bin/python scripts/bench_train.py
    # options: --model baseline|joint  --batch-size 64  --steps 15  --warmup 3  --repeats 3
    #          --workers N (default: trainer.workers)  --threads N (torch.set_num_threads)
    #          --store PATH (a prepared store, e.g. data/prepared/synthetic_seed0; default: a small
    #          synthetic one built in a temp dir)  --train-images 300  --device auto|cpu|cuda
    #          --out bench_results/train.json  --override KEY=VALUE (extra Hydra overrides, repeatable)

The default (baseline, batch 64, 3 x (3 + 15) steps per mode) takes about 2-4 minutes on a 2-core CPU,
~20 s of which is building the synthetic store; on a GPU well under a minute.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from importlib import metadata
from pathlib import Path
from typing import Any

GOAL = 0.95


# --------------------------------------------------------------------------- setup
def _version(pkg: str) -> str | None:
    try:
        return metadata.version(pkg)
    except metadata.PackageNotFoundError:
        return None


def machine_info(device: Any) -> dict[str, Any]:
    import torch

    info: dict[str, Any] = {
        "cpu_count": os.cpu_count(),
        "affinity_cpus": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None,
        "loadavg_at_start": list(os.getloadavg()) if hasattr(os, "getloadavg") else None,
        "platform": platform.platform(),
        "processor": platform.processor() or platform.machine(),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "torch_threads": torch.get_num_threads(),
        "torch_interop_threads": torch.get_num_interop_threads(),
        "numpy": _version("numpy"),
        "torchvision": _version("torchvision"),
        "transformers": _version("transformers"),
        "emotic_mm": _version("emotic-mm") or _version("emotic_mm"),
        "device": str(device),
        "device_name": platform.processor() or platform.machine(),
    }
    if device.type == "cuda":
        info["device_name"] = torch.cuda.get_device_name(device)
        info["cuda"] = torch.version.cuda
        info["cudnn"] = torch.backends.cudnn.version()
    return info


def build_synthetic_store(root: Path, train_images: int) -> tuple[Path, float]:
    """A small seeded synthetic store (generated + converted like ``emotic-mm prepare``)."""
    from omegaconf import OmegaConf

    from emotic_mm.data.convert import ConvertOptions, convert_release
    from emotic_mm.data.synthetic import SyntheticSpec, generate_raw

    t0 = time.perf_counter()
    raw, store = root / "raw", root / "store"
    raw.mkdir(parents=True)
    generate_raw(SyntheticSpec(seed=0, images={"train": train_images, "val": 20, "test": 20}), raw)
    convert_release(ConvertOptions(
        raw_dir=raw, out_dir=store,
        text_cfg=OmegaConf.create({"source": "file", "path": str(raw / "descriptions.jsonl")}),
        tokenizer_name="shipped:all-MiniLM-L6-v2", workers=0))
    return store, time.perf_counter() - t0


def compose_config(store: Path, overrides: list[str]):
    from hydra import compose, initialize_config_dir

    from emotic_mm.config import configs_dir

    with initialize_config_dir(config_dir=str(configs_dir()), version_base="1.3"):
        return compose("train", overrides=[f"data.prepared_dir={store}", *overrides])


# --------------------------------------------------------------------------- the two feeds
class Window:
    """``n`` batches from ``source`` for ``Trainer._train_epoch`` (which needs ``len``); records how long
    the loop was blocked waiting for each batch, and how many loader epochs began inside it."""

    def __init__(self, source: Any, n: int) -> None:
        self.source, self.n = source, n
        self.wait = 0.0
        self.epoch_starts = 0

    def __len__(self) -> int:
        return self.n

    def __iter__(self):
        for _ in range(self.n):
            t0 = time.perf_counter()
            item = next(self.source)
            self.wait += time.perf_counter() - t0
            if isinstance(item, tuple):  # (batch, started a new epoch)
                item, started = item
                self.epoch_starts += started
            yield item


def loader_stream(loader: Any, first_epoch: int, counter: list[int]):
    """Endless batches of the real loader, a fresh epoch (reshuffled, workers reset) each pass."""
    from torch.utils.data import DistributedSampler

    epoch = first_epoch
    while True:
        if isinstance(loader.sampler, DistributedSampler):
            loader.sampler.set_epoch(epoch)
        counter[0] = epoch
        started = True
        for batch in loader:
            yield batch, started
            started = False
        epoch += 1


def memory_stream(batches: list[dict[str, Any]]):
    while True:
        yield from batches


# --------------------------------------------------------------------------- one configuration
def run_config(label: str, store: Path, overrides: list[str], args: argparse.Namespace,
               run_dir: Path, log: Any) -> dict[str, Any]:
    import torch

    from emotic_mm.data.loader import EmoticDataset
    from emotic_mm.data.store import Store
    from emotic_mm.models.factory import build_model, check_model_config
    from emotic_mm.stages.common import check_store_fits_model, warm_text_features
    from emotic_mm.training.distributed import DistInfo
    from emotic_mm.training.inference import to_device
    from emotic_mm.training.losses import build_objective
    from emotic_mm.training.trainer import Trainer, make_loader, seed_everything, select_device

    cfg = compose_config(store, overrides)
    modalities = check_model_config(cfg.model)
    device = select_device(str(cfg.trainer.device))
    seed_everything(int(cfg.seed))
    st = Store(store)
    check_store_fits_model(st, cfg.model)
    train_set = EmoticDataset(st["train"], modalities)
    batch_size, workers = int(cfg.trainer.batch_size), int(cfg.trainer.workers)
    dist = DistInfo()
    loader = make_loader(train_set, batch_size, workers, device, True, int(cfg.seed), dist,
                         drop_last=len(train_set) > batch_size)
    if len(loader) == 0:
        raise SystemExit(f"train split of {store} has {len(train_set)} rows: not one batch of {batch_size}")
    model = build_model(cfg.model).to(device)
    t0 = time.perf_counter()
    warm_text_features(model, [train_set])
    warm_s = time.perf_counter() - t0
    trainer = Trainer(model, build_objective(cfg.loss), cfg.trainer, cfg, run_dir, dist, device,
                      steps_per_epoch=len(loader))
    per_window = args.warmup + args.steps

    # memory mode's batches: one untimed pass over the same loader (a separate epoch number)
    counter = [0]
    stream = loader_stream(loader, 10_000, counter)
    t0 = time.perf_counter()
    batches = [to_device(next(stream)[0], device) if device.type == "cuda" else next(stream)[0]
               for _ in range(per_window)]
    materialise_s = time.perf_counter() - t0
    del stream

    def sync() -> None:
        if device.type == "cuda":
            torch.cuda.synchronize(device)

    rounds: list[dict[str, Any]] = []
    next_epoch = 0
    for r in range(args.repeats):
        entry: dict[str, Any] = {"round": r}
        for mode in ("loader", "memory"):
            if mode == "loader":
                source = loader_stream(loader, next_epoch, counter)
            else:
                source = memory_stream(batches)
            trainer._train_epoch(Window(source, args.warmup), epoch=r)  # untimed warmup
            window = Window(source, args.steps)
            sync()
            t0 = time.perf_counter()
            trainer._train_epoch(window, epoch=r)
            sync()
            seconds = time.perf_counter() - t0
            if mode == "loader":
                next_epoch = counter[0] + 1
                source.close()
                if workers:  # let the abandoned epoch's prefetches (<= 2 per worker) finish off the clock
                    time.sleep(args.settle)
            images = args.steps * int(batches[0]["categories"].shape[0])
            entry[mode] = {"seconds": seconds, "steps_per_s": args.steps / seconds,
                           "images_per_s": images / seconds, "data_wait_s": window.wait,
                           "data_wait_share": window.wait / seconds, "epoch_starts_timed": window.epoch_starts}
            log(f"  {label} round {r + 1}/{args.repeats} {mode:6s}: {args.steps / seconds:6.3f} steps/s, "
                f"{images / seconds:7.1f} img/s, data wait {100 * window.wait / seconds:4.1f} %")
        entry["ratio"] = entry["loader"]["steps_per_s"] / entry["memory"]["steps_per_s"]
        rounds.append(entry)

    med = {m: {k: statistics.median(e[m][k] for e in rounds)
               for k in ("steps_per_s", "images_per_s", "data_wait_share")} for m in ("loader", "memory")}
    ratio = med["loader"]["steps_per_s"] / med["memory"]["steps_per_s"]
    paired = [e["ratio"] for e in rounds]
    return {
        "label": label, "overrides": [f"data.prepared_dir={store}", *overrides],
        "device": str(device), "precision": str(trainer.precision),
        "channels_last": bool(cfg.trainer.channels_last == "auto" and device.type == "cuda"
                              or cfg.trainer.channels_last is True),
        "model": str(cfg.model.name), "modalities": modalities, "batch_size": batch_size,
        "images_per_step": int(batches[0]["categories"].shape[0]), "workers": workers,
        "train_rows": len(train_set), "batches_per_epoch": len(loader),
        "memory_batches": len(batches), "memory_batches_on": str(batches[0]["categories"].device),
        "warm_text_s": warm_s, "materialise_s": materialise_s,
        "rounds": rounds, "median": med, "ratio": ratio,
        "paired_ratios": paired, "paired_ratio_median": statistics.median(paired),
        "paired_ratio_min": min(paired), "paired_ratio_max": max(paired),
        "meets_goal": ratio >= GOAL,
    }


# --------------------------------------------------------------------------- main
def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--store", type=Path, help="an existing prepared store (default: build a small synthetic one)")
    p.add_argument("--train-images", type=int, default=300, help="synthetic train images when building (~1.6 persons each)")
    p.add_argument("--model", choices=("baseline", "joint"), default="baseline")
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--steps", type=int, default=None, help="timed optimizer steps per window (default 15 CPU, 50 CUDA)")
    p.add_argument("--warmup", type=int, default=3, help="untimed steps before each window")
    p.add_argument("--repeats", type=int, default=3, help="interleaved rounds (loader, memory)")
    p.add_argument("--workers", type=int, default=None, help="DataLoader workers (default: trainer.workers)")
    p.add_argument("--threads", type=int, default=None, help="torch.set_num_threads in the main process")
    p.add_argument("--settle", type=float, default=1.0,
                   help="seconds to idle after each loader window, so its leftover prefetches do not run "
                        "during the next memory window")
    p.add_argument("--device", default="auto", help="trainer.device (auto = cuda > mps > cpu)")
    p.add_argument("--override", action="append", default=[], metavar="KEY=VALUE", help="extra Hydra override")
    p.add_argument("--no-amp", action="store_true", help="on CUDA, skip the bf16+channels_last configuration")
    p.add_argument("--out", type=Path, default=Path("bench_results/train.json"))
    args = p.parse_args(argv)

    from rich.console import Console
    from rich.table import Table

    console = Console()
    if not console.is_terminal:  # rich falls back to 80 columns when piped; the table needs more
        console = Console(width=150)

    def log(msg: str) -> None:
        console.print(msg, highlight=False)

    import torch

    from emotic_mm.training.trainer import select_device

    if args.threads:
        torch.set_num_threads(args.threads)
    device = select_device(args.device)
    if args.steps is None:
        args.steps = 50 if device.type == "cuda" else 15
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="bench_train_") as tmp:
        tmp_path = Path(tmp)
        store_build_s = None
        if args.store is not None:
            store = args.store.resolve()
        else:
            log(f"building a synthetic store ({args.train_images} train images) in {tmp_path} ...")
            store, store_build_s = build_synthetic_store(tmp_path / "data", args.train_images)
            log(f"  built in {store_build_s:.1f} s")
        base = [f"model={args.model}", f"trainer.batch_size={args.batch_size}", f"trainer.device={args.device}",
                "trainer.tensorboard=false", *args.override]
        if args.workers is not None:
            base.append(f"trainer.workers={args.workers}")
        configs = [("fp32", base)]
        if device.type == "cuda" and not args.no_amp:
            configs.append(("bf16+channels_last", [*base, "trainer.precision=bf16", "trainer.channels_last=true"]))
        results = []
        for label, overrides in configs:
            log(f"[bold]{label}[/bold]: {' '.join(overrides)}")
            results.append(run_config(label, store, overrides, args, tmp_path / f"run-{len(results)}", log))
    total_s = time.perf_counter() - started

    table = Table(title=f"train input pipeline · {args.model} · batch {args.batch_size} · "
                        f"{args.steps} timed steps x {args.repeats} interleaved rounds · {device}")
    for col in ("config", "mode", "workers", "steps/s (median)", "images/s (median)", "data wait",
                "per-round steps/s", "ratio loader/memory", f"goal >= {GOAL}"):
        table.add_column(col, justify="left" if col in ("config", "mode") else "right")
    for res in results:
        for mode in ("loader", "memory"):
            m = res["median"][mode]
            first = mode == "loader"
            table.add_row(
                res["label"] if first else "", mode, str(res["workers"]) if first else "-",
                f"{m['steps_per_s']:.3f}", f"{m['images_per_s']:.1f}", f"{100 * m['data_wait_share']:.1f} %",
                " ".join(f"{e[mode]['steps_per_s']:.3f}" for e in res["rounds"]),
                (f"{res['ratio']:.3f} (paired {res['paired_ratio_min']:.3f}-{res['paired_ratio_max']:.3f})"
                 if first else ""),
                ("[green]yes[/green]" if res["meets_goal"] else "[red]no[/red]") if first else "",
                end_section=not first)
    console.print(table)

    report = {
        "benchmark": "train_input_pipeline",
        "goal": {"ratio_min": GOAL, "ratio": "median steps/s with the real loader / median steps/s on in-memory tensors"},
        "machine": machine_info(device),
        "args": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()},
        "store": str(store) if args.store is not None else "synthetic (temporary)",
        "store_build_s": store_build_s,
        "configs": results,
        "meets_goal": all(r["meets_goal"] for r in results),
        "total_s": total_s,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    log(f"wrote {args.out} ({total_s:.0f} s in all)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
