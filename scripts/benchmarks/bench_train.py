"""Benchmark the training input pipeline: the real DataLoader vs the same steps on in-memory tensors.

What it measures
    Optimizer steps/s and images/s of the project's own training step — ``Trainer._train_epoch``
    (to_device, augment, autocast, forward, loss, backward, clip, optimizer + scheduler step, the
    ``float(loss)`` sync, the progress update) on a real :class:`Trainer` built as ``emotic-mm train``
    builds it (the Hydra-composed ``train`` config, ``build_model``, ``warm_text_features``,
    ``build_objective``) — fed in two modes:

    * **loader** — batches from ``make_loader(EmoticDataset(store['train']), ...)`` made exactly as in
      ``stages/train.py`` (DistributedSampler shuffle, ``trainer.workers`` processes, persistent workers,
      pin_memory on CUDA, ``drop_last``). One stream serves the whole run, so epochs begin (sampler
      reshuffle, workers reset, first-batch latency) at their natural rate, every ``len(loader)`` steps,
      inside the timed windows (the JSON counts them). After each loader window the script idles
      ``--settle`` seconds so that the workers' refill of their prefetch queue does not run on the other
      mode's clock. On CUDA each loader window then first runs, untimed, as many steps as the workers
      could prefetch during the pause (``prefetch_factor x workers``; ``--window-warmup``), so that it
      starts from the steady state, not from a queue filled for free. On CPU that drain is skipped: a
      step there takes ~100x a batch read (~0.7 s vs ~7 ms on 2 cores), so the <= 4 free batches are
      worth < 1 % of a window, while 4 drain steps per round would cost more than the windows.
    * **memory** — batches taken once (untimed) from the same loader and kept as tensors, on the
      training device when that is CUDA (so this mode has no input pipeline at all, not even the
      host-to-device copy); the windows cycle through them.

    ``--warmup`` untimed steps before the first round absorb one-off costs (allocator, autograd,
    oneDNN/cuDNN algorithm choice). Every window is timed with ``time.perf_counter`` (CUDA synchronised
    before and after) and runs ``--window-s`` seconds (whole steps, at least 2), or exactly ``--steps``.
    The script also records how long the loop sat blocked in ``next(loader)`` ("data wait"). That is a
    lower bound on the loader's cost: on a small CPU the workers also take cores from torch's intra-op
    threads, which shows up as slower steps rather than as waiting.

    ``ratio`` = loader steps/s / memory steps/s, computed within each round, median over the rounds;
    the goal is ``ratio >= 0.95`` (the input pipeline costs training at most 5 %). The ratio of the two
    modes' median steps/s is reported next to it.

    On CUDA (``torch.cuda.is_available()``) a second configuration, AMP bf16 + channels_last
    (``trainer.precision=bf16 trainer.channels_last=true``), runs after the default fp32 one.

Why ratios, measured in one run
    Absolute steps/s depend on the machine and, on a shared 2-core box, on whatever else runs (another
    torch job there can slow a step ten-fold within seconds). The claim under test is relative, so both
    modes run in one process on the same model and optimizer, interleaved in short windows, round by
    round, in alternating order (A B | B A | A B ...) so that a linear drift also cancels over each pair
    of rounds. Within a round the two windows are seconds apart and see nearly the same background
    load; the median over rounds discards a round in which the load changed mid-way. The per-round
    ratios are in the table (their range) and in the JSON, as a measure of the noise left.

How to run
    HF_HUB_OFFLINE=1 .venv/bin/python scripts/benchmarks/bench_train.py
    # options: --model baseline|joint  --batch-size 64  --workers N (default trainer.workers)
    #          --threads N (torch.set_num_threads)  --repeats 6  --window-s S (10 CPU, 4 CUDA)  --steps N
    #          --warmup 3  --window-warmup N  --settle 1.0  --device auto|cpu|cuda  --no-amp
    #          --store PATH (a prepared store, e.g. data/prepared/synthetic_seed0; default: a synthetic
    #          one of --train-images 1400, the demo store's size, built in a temp dir)
    #          --override KEY=VALUE (extra Hydra override, repeatable)  --out bench_results/train.json

The default takes about 3 minutes on an otherwise idle 2-core CPU (~15 s building the store, ~20 s
loading the model and warming its text memo, 6 rounds x 2 windows of 10 s). Windows never shrink below
2 steps; when another torch job shares the 2 cores a step can take ~9 s instead of ~0.7 s, and the run
~5 minutes, with 2-step windows whose per-round ratios scatter widely (see the range in the table).
On a GPU, about 2 minutes for both configurations.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from benchlib import machine_info, sync  # scripts/benchmarks/benchlib.py

from emotic_mm.fsutil import write_json_atomic

GOAL = 0.95
WINDOW_S_CPU, WINDOW_S_CUDA = 10.0, 4.0  # default length of a timed window
MIN_STEPS = 2  # a timed window runs at least this many steps ...
MAX_STEPS_CPU, MAX_STEPS_CUDA = 40, 400  # ... and at most this many
MEMORY_BATCHES = 24  # distinct in-memory batches, cycled


# --------------------------------------------------------------------------- setup


def _loadavg() -> list[float] | None:
    return [round(x, 2) for x in os.getloadavg()] if hasattr(os, "getloadavg") else None


PACKAGES = ("numpy", "torchvision", "transformers")  # versions recorded with the figures


def build_synthetic_store(root: Path, train_images: int) -> tuple[Path, float]:
    """A small seeded synthetic store (generated + converted like ``emotic-mm prepare``)."""
    from emotic_mm.testkit import synthetic_store

    t0 = time.perf_counter()
    built = synthetic_store(
        root, seed=0, images={"train": train_images, "val": 20, "test": 20}, max_length=None
    )
    return built.store, time.perf_counter() - t0


def compose_config(store: Path, overrides: list[str]):
    from emotic_mm.testkit import compose_cfg

    return compose_cfg("train", [f"data.prepared_dir={store}", *overrides])


# --------------------------------------------------------------------------- the two feeds
class Window:
    """Batches from ``source`` for ``Trainer._train_epoch`` (which needs ``len``): at most ``n``, and when
    ``seconds`` is set it ends early, once ``min_n`` steps are done and ``seconds`` have passed (only at a
    multiple of ``multiple``, the gradient-accumulation period). Records how many batches it gave, how
    long the loop was blocked waiting for them, and how many loader epochs began inside it."""

    def __init__(
        self, source: Any, n: int, seconds: float | None = None, min_n: int = 1, multiple: int = 1
    ) -> None:
        self.source, self.n, self.seconds, self.min_n, self.multiple = source, n, seconds, min_n, multiple
        self.count = 0
        self.wait = 0.0
        self.epoch_starts = 0

    def __len__(self) -> int:
        return self.n

    def __iter__(self):
        start = time.perf_counter()
        for i in range(self.n):
            if (
                self.seconds is not None
                and i >= self.min_n
                and i % self.multiple == 0
                and time.perf_counter() - start >= self.seconds
            ):
                return
            t0 = time.perf_counter()
            item = next(self.source)
            self.wait += time.perf_counter() - t0
            if isinstance(item, tuple):  # (batch, started a new epoch)
                item, started = item
                self.epoch_starts += started
            self.count += 1
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
def run_config(
    label: str, store: Path, overrides: list[str], args: argparse.Namespace, run_dir: Path, log: Any
) -> dict[str, Any]:
    from emotic_mm.data.access import store_for_model
    from emotic_mm.data.batches import to_device
    from emotic_mm.data.loader import EmoticDataset
    from emotic_mm.models.factory import build_model, check_model_config
    from emotic_mm.models.warming import warm_text_features
    from emotic_mm.training.distributed import DistInfo
    from emotic_mm.training.losses import build_objective
    from emotic_mm.training.runtime import make_loader, seed_everything, select_device
    from emotic_mm.training.trainer import Trainer

    cfg = compose_config(store, overrides)
    modalities = check_model_config(cfg.model)
    device = select_device(str(cfg.device))
    seed_everything(int(cfg.seed))
    st = store_for_model(cfg, cfg)  # as emotic-mm train opens it (model=clip: its own tokenizer's ids)
    train_set = EmoticDataset(st["train"], modalities)
    batch_size, workers = int(cfg.trainer.batch_size), int(cfg.trainer.workers)
    dist = DistInfo()
    loader = make_loader(
        train_set,
        batch_size,
        workers,
        device,
        True,
        int(cfg.seed),
        dist,
        drop_last=len(train_set) > batch_size,
    )
    if len(loader) == 0:
        raise SystemExit(f"train split of {store} has {len(train_set)} rows: not one batch of {batch_size}")
    model = build_model(cfg.model).to(device)
    t0 = time.perf_counter()
    warm_text_features(model, [train_set])
    warm_s = time.perf_counter() - t0
    trainer = Trainer(
        model, build_objective(cfg.loss), cfg.trainer, cfg, run_dir, dist, device, steps_per_epoch=len(loader)
    )
    cuda = device.type == "cuda"
    window_s = None if args.steps else (args.window_s or (WINDOW_S_CUDA if cuda else WINDOW_S_CPU))
    max_steps = args.steps or (MAX_STEPS_CUDA if cuda else MAX_STEPS_CPU)
    accumulate = max(1, int(cfg.trainer.accumulate))
    min_steps = -(-MIN_STEPS // accumulate) * accumulate

    # memory mode's batches: one untimed pass over the same loader (a separate epoch number), kept on
    # the training device; the memory windows cycle through them
    counter = [0]
    stream = loader_stream(loader, 10_000, counter)
    t0 = time.perf_counter()
    batches = [
        to_device(next(stream)[0], device) if cuda else next(stream)[0]
        for _ in range(min(max(args.warmup, max_steps), MEMORY_BATCHES))
    ]
    materialise_s = time.perf_counter() - t0
    stream.close()
    images_per_step = int(batches[0]["categories"].shape[0])

    # once per configuration: first-step costs (allocator, autograd graph, oneDNN/cuDNN kernel choice)
    t0 = time.perf_counter()
    if args.warmup:
        trainer._train_epoch(Window(memory_stream(batches), args.warmup), epoch=0)
    sync(device)
    warmup_s = time.perf_counter() - t0
    log(
        f"  warm-up: {args.warmup} steps in {warmup_s:.1f} s; windows of "
        + (f"{args.steps} steps" if args.steps else f"~{window_s:g} s ({min_steps}..{max_steps} steps)")
    )

    # the loader feed: one stream for the whole run, so epochs start at their natural rate (every
    # len(loader) steps) inside the timed windows. On CUDA each loader window first drains, untimed, the
    # batches the workers prefetched while the stream was paused (prefetch_factor x workers), so that it
    # starts from the steady state rather than from a queue filled for free; on CPU a step takes ~100x a
    # batch read, so those few free batches are worth < 1 % of a window and the drain steps (seconds
    # each there) are skipped
    stream = loader_stream(loader, 0, counter)
    drain = (
        args.window_warmup
        if args.window_warmup is not None
        else (loader.prefetch_factor or 0) * workers
        if cuda
        else 0
    )
    rounds: list[dict[str, Any]] = []
    for r in range(args.repeats):
        entry: dict[str, Any] = {"round": r}
        order = (
            ("loader", "memory") if r % 2 == 0 else ("memory", "loader")
        )  # A B, B A, ...: linear drift cancels
        entry["order"] = list(order)
        for mode in order:
            if mode == "loader":
                source = stream
                if drain:
                    trainer._train_epoch(Window(source, drain), epoch=r)
            else:
                source = memory_stream(batches)
            window = Window(source, max_steps, window_s, min_steps, accumulate)
            sync(device)
            t0 = time.perf_counter()
            trainer._train_epoch(window, epoch=r)
            sync(device)
            seconds = time.perf_counter() - t0
            if mode == "loader" and workers:  # the workers refill their queue now, off the other mode's clock
                time.sleep(args.settle)
            steps = window.count
            entry[mode] = {
                "steps": steps,
                "seconds": seconds,
                "steps_per_s": steps / seconds,
                "images_per_s": steps * images_per_step / seconds,
                "data_wait_s": window.wait,
                "data_wait_share": window.wait / seconds,
                "epoch_starts_timed": window.epoch_starts,
            }
            log(
                f"  {label} round {r + 1}/{args.repeats} {mode:6s}: {steps:3d} steps in {seconds:5.1f} s = "
                f"{steps / seconds:6.3f} steps/s, {steps * images_per_step / seconds:7.1f} img/s, "
                f"data wait {100 * window.wait / seconds:4.1f} %, epoch starts {window.epoch_starts}"
            )
        entry["ratio"] = entry["loader"]["steps_per_s"] / entry["memory"]["steps_per_s"]
        rounds.append(entry)
    stream.close()  # the loader's workers go with the loader when this function returns

    med = {
        m: {
            k: statistics.median(e[m][k] for e in rounds)
            for k in ("steps_per_s", "images_per_s", "data_wait_share")
        }
        for m in ("loader", "memory")
    }
    paired = [e["ratio"] for e in rounds]
    ratio = statistics.median(paired)
    return {
        "label": label,
        "overrides": [f"data.prepared_dir={store}", *overrides],
        "device": str(device),
        "precision": str(trainer.precision),
        "channels_last": bool(
            cfg.trainer.channels_last == "auto" and device.type == "cuda" or cfg.trainer.channels_last is True
        ),
        "model": str(cfg.model.name),
        "modalities": modalities,
        "batch_size": batch_size,
        "images_per_step": images_per_step,
        "workers": workers,
        "accumulate": accumulate,
        "train_rows": len(train_set),
        "batches_per_epoch": len(loader),
        "memory_batches": len(batches),
        "memory_batches_on": str(batches[0]["categories"].device),
        "warm_text_s": warm_s,
        "materialise_s": materialise_s,
        "warmup_s": warmup_s,
        "loader_drain_steps": drain,
        "loader_epochs_used": counter[0] + 1,
        "window": {"steps": args.steps}
        if args.steps
        else {"seconds": window_s, "min_steps": min_steps, "max_steps": max_steps},
        "timed_steps_total": {m: sum(e[m]["steps"] for e in rounds) for m in ("loader", "memory")},
        "rounds": rounds,
        "median": med,
        "ratio": ratio,
        "ratio_is": "median over rounds of loader/memory steps/s within the round",
        "ratio_of_medians": med["loader"]["steps_per_s"] / med["memory"]["steps_per_s"],
        "paired_ratios": paired,
        "paired_ratio_min": min(paired),
        "paired_ratio_max": max(paired),
        "meets_goal": ratio >= GOAL,
    }


# --------------------------------------------------------------------------- main
def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument(
        "--store", type=Path, help="an existing prepared store (default: build a small synthetic one)"
    )
    p.add_argument(
        "--train-images",
        type=int,
        default=1400,
        help="synthetic train images when building (~1.6 persons each; 1400 = the demo store's)",
    )
    p.add_argument(
        "--model",
        choices=("baseline", "joint", "clip"),
        default="baseline",
        help="clip without --override model.clip.name=...: a tiny random CLIP built here (CPU-sized; "
        "its speed says nothing about a real ViT-B, see scripts/benchmarks/clip_budget.py)",
    )
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument(
        "--steps",
        type=int,
        default=None,
        help="timed optimizer steps per window (default: windows of --window-s seconds)",
    )
    p.add_argument(
        "--window-s",
        type=float,
        default=None,
        help=f"length of a timed window (default {WINDOW_S_CPU:g} s on CPU, {WINDOW_S_CUDA:g} s on CUDA; "
        f"at least {MIN_STEPS} and at most {MAX_STEPS_CPU}/{MAX_STEPS_CUDA} steps)",
    )
    p.add_argument(
        "--warmup", type=int, default=3, help="untimed steps once per configuration, before round 1"
    )
    p.add_argument(
        "--window-warmup",
        type=int,
        default=None,
        help="untimed steps at the start of every loader window, draining what the workers "
        "prefetched during the pause (default: prefetch_factor x workers on CUDA, 0 on CPU)",
    )
    p.add_argument(
        "--repeats",
        type=int,
        default=6,
        help="interleaved rounds; even rounds run loader then memory, odd rounds memory then loader",
    )
    p.add_argument("--workers", type=int, default=None, help="DataLoader workers (default: trainer.workers)")
    p.add_argument("--threads", type=int, default=None, help="torch.set_num_threads in the main process")
    p.add_argument(
        "--settle",
        type=float,
        default=1.0,
        help="seconds to idle after each loader window, so its leftover prefetches do not run "
        "during the next memory window",
    )
    p.add_argument("--device", default="auto", help="device (auto = cuda > mps > cpu)")
    p.add_argument(
        "--override", action="append", default=[], metavar="KEY=VALUE", help="extra Hydra override"
    )
    p.add_argument("--no-amp", action="store_true", help="on CUDA, skip the bf16+channels_last configuration")
    p.add_argument("--out", type=Path, default=Path("bench_results/train.json"))
    args = p.parse_args(argv)
    if (
        (args.steps is not None and args.steps < 1)
        or args.repeats < 1
        or min(args.warmup, args.window_warmup or 0) < 0
    ):
        p.error("--steps and --repeats must be >= 1, warmups >= 0")

    from rich.console import Console
    from rich.table import Table

    console = Console()
    if not console.is_terminal:  # rich falls back to 80 columns when piped; the table needs more
        console = Console(width=150)

    def log(msg: str) -> None:
        console.print(msg, highlight=False)

    import torch

    from emotic_mm.training.runtime import select_device

    if args.threads:
        torch.set_num_threads(args.threads)
    device = select_device(args.device)
    started, load_start = time.perf_counter(), _loadavg()
    with tempfile.TemporaryDirectory(prefix="bench_train_") as tmp:
        tmp_path = Path(tmp)
        store_build_s = None
        if args.store is not None:
            store = args.store.resolve()
        else:
            log(f"building a synthetic store ({args.train_images} train images) in {tmp_path} ...")
            store, store_build_s = build_synthetic_store(tmp_path / "data", args.train_images)
            log(f"  built in {store_build_s:.1f} s")
        base = [
            f"model={args.model}",
            f"trainer.batch_size={args.batch_size}",
            f"device={args.device}",
            "trainer.tensorboard=false",
            *args.override,
        ]
        if args.model == "clip" and not any(o.startswith("model.clip.name=") for o in args.override):
            from emotic_mm.testkit import save_tiny

            base.append(f"model.clip.name={save_tiny(tmp_path / 'tiny_clip', 'clip')}")
            log(
                "model=clip: a tiny random CLIP (emotic_mm.testkit.save_tiny), "
                "since no weights can be downloaded"
            )
        if args.workers is not None:
            base.append(f"trainer.workers={args.workers}")
        configs = [("fp32", base)]
        if device.type == "cuda" and not args.no_amp:
            configs.append(
                ("bf16+channels_last", [*base, "trainer.precision=bf16", "trainer.channels_last=true"])
            )
        results = []
        for label, overrides in configs:
            log(f"[bold]{label}[/bold]: {' '.join(overrides)}")
            results.append(run_config(label, store, overrides, args, tmp_path / f"run-{len(results)}", log))
    total_s = time.perf_counter() - started

    table = Table(
        title=f"train input pipeline · {args.model} · batch {args.batch_size} · "
        f"{args.repeats} interleaved rounds · {machine_info(PACKAGES, device)['device_name']} ({device})"
    )
    for col in (
        "config",
        "mode",
        "workers",
        "timed steps",
        "steps/s (median)",
        "images/s (median)",
        "data wait",
        "per-round steps/s",
        "ratio loader/memory",
        "ratio of medians",
        f"goal >= {GOAL}",
    ):
        table.add_column(col, justify="left" if col in ("config", "mode") else "right")
    for res in results:
        for mode in ("loader", "memory"):
            m = res["median"][mode]
            first = mode == "loader"
            table.add_row(
                res["label"] if first else "",
                mode,
                str(res["workers"]) if first else "-",
                str(res["timed_steps_total"][mode]),
                f"{m['steps_per_s']:.3f}",
                f"{m['images_per_s']:.1f}",
                f"{100 * m['data_wait_share']:.1f} %",
                " ".join(f"{e[mode]['steps_per_s']:.2f}" for e in res["rounds"]),
                f"{res['ratio']:.3f}"
                if first
                else f"rounds {min(res['paired_ratios']):.2f}-{max(res['paired_ratios']):.2f}",
                f"{res['ratio_of_medians']:.3f}" if first else "",
                ("[green]yes[/green]" if res["meets_goal"] else "[red]no[/red]") if first else "",
                end_section=not first,
            )
    console.print(table)

    report = {
        "benchmark": "train_input_pipeline",
        "goal": {
            "ratio_min": GOAL,
            "ratio": "median over interleaved rounds of (steps/s with the real loader / steps/s on in-memory "
            "tensors) within the round; ratio_of_medians is reported next to it",
        },
        "machine": {**machine_info(PACKAGES, device), "loadavg_start": load_start, "loadavg_end": _loadavg()},
        "args": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()},
        "store": str(store) if args.store is not None else "synthetic (temporary)",
        "store_build_s": store_build_s,
        "configs": results,
        "meets_goal": all(r["meets_goal"] for r in results),
        "total_s": total_s,
    }
    write_json_atomic(args.out, report)
    log(f"wrote {args.out} ({total_s:.0f} s in all)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
