"""The training loop: device, AMP, channels_last, accumulation, clipping, schedules, DDP, checkpoints.

Explicit rather than callback-driven: :meth:`Trainer.fit` is one loop over epochs — train an epoch,
validate, save ``best`` (if improved) and ``last``, then log (CSV + TensorBoard), stop early — so the
order of events is visible in one place.
"""

from __future__ import annotations

import csv
import logging
import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from omegaconf import DictConfig, OmegaConf
from torch import nn
from torch.utils.data import DataLoader, DistributedSampler

from emotic_mm.checkpoint import load_training_state, load_weights, rng_state, save_checkpoint, set_rng_state
from emotic_mm.config import instantiate_config, real_number, whole_number
from emotic_mm.data.batches import to_device
from emotic_mm.errors import ConfigError
from emotic_mm.fsutil import atomic_file
from emotic_mm.progress import console
from emotic_mm.training.augment import augment_batch
from emotic_mm.training.distributed import DistInfo, barrier
from emotic_mm.training.inference import autocast_for, collect_outputs
from emotic_mm.training.metrics import emotion_metrics

log = logging.getLogger(__name__)

# trainer keys a resumed run may change: how long it runs and how this machine runs it
# trainer keys that do not change the weights: how this machine runs, and whether it resumes
RUNTIME_KEYS = ("workers", "threads", "tensorboard", "compile", "resume")
# ... and what a resumed run may change besides: how long it runs
RESUME_MAY_CHANGE = (*RUNTIME_KEYS, "epochs", "early_stopping_patience")


def check_trainer_config(cfg: DictConfig) -> None:
    """The ``trainer`` block, validated in one place before anything is built."""
    whole_number(cfg.epochs, "trainer.epochs", 1)
    whole_number(cfg.batch_size, "trainer.batch_size", 1)
    whole_number(cfg.eval_batch_size, "trainer.eval_batch_size", 1)
    whole_number(cfg.accumulate, "trainer.accumulate", 1)
    whole_number(cfg.workers, "trainer.workers", 0)
    whole_number(cfg.early_stopping_patience, "trainer.early_stopping_patience", 0)
    real_number(cfg.grad_clip, "trainer.grad_clip", 0.0)
    if cfg.get("threads") is not None:
        whole_number(cfg.threads, "trainer.threads", 1)
    if str(cfg.precision) not in ("32", "bf16", "fp16"):
        raise ConfigError(f"trainer.precision={cfg.precision!r} is not one of 32, bf16, fp16")
    lr = cfg.optimizer.get("lr") if hasattr(cfg.optimizer, "get") else None
    if lr is not None:
        real_number(lr, "trainer.optimizer.lr", 0.0, exclusive_minimum=True)


def build_optimizer(model: nn.Module, cfg: DictConfig) -> torch.optim.Optimizer:
    """``trainer.optimizer`` is instantiated with the trainable parameters (any ``torch.optim`` class).

    A submodule with an ``lr_scale`` other than 1 (a fine-tuned pretrained text encoder:
    ``model.text_encoder.lr_scale``) gets its own parameter group at ``lr × lr_scale``, as pretrained
    transformers are fine-tuned at a small fraction of a new head's rate."""
    scale_of: dict[int, float] = {}
    for module in model.modules():  # parents first: a nested module's own lr_scale wins over its parent's
        if hasattr(module, "lr_scale"):
            scale_of.update({id(p): float(module.lr_scale) for p in module.parameters()})
    groups: dict[float, list[nn.Parameter]] = {1.0: []}
    for p in model.parameters():
        if p.requires_grad:
            groups.setdefault(scale_of.get(id(p), 1.0), []).append(p)
    if len(groups) == 1:
        return instantiate_config(cfg.optimizer, "trainer.optimizer", params=groups[1.0])
    if cfg.optimizer.get("lr") is None:
        raise ConfigError(
            "trainer.optimizer.lr: needed to scale the learning rate of modules with an lr_scale"
        )
    lr = float(cfg.optimizer.lr)
    return instantiate_config(
        cfg.optimizer,
        "trainer.optimizer",
        params=[{"params": ps, "lr": lr * scale} for scale, ps in groups.items() if ps],
    )


def build_scheduler(optimizer: torch.optim.Optimizer, cfg: DictConfig, steps_per_epoch: int):
    """``trainer.scheduler`` is instantiated with the optimizer, optimizer steps per epoch and epochs;
    the schedule is stepped once per optimizer step (see :mod:`emotic_mm.training.schedules`)."""
    return instantiate_config(
        cfg.scheduler,
        "trainer.scheduler",
        optimizer=optimizer,
        steps_per_epoch=steps_per_epoch,
        epochs=int(cfg.epochs),
    )


@dataclass
class EpochLog:
    epoch: int
    train_loss: float
    parts: dict[str, float]
    val: dict[str, Any]
    lr: float
    seconds: float
    images_per_s: float


@dataclass
class FitResult:
    best_epoch: int
    best_val: dict[str, Any]
    history: list[EpochLog] = field(default_factory=list)
    stopped_early: bool = False


class Trainer:
    """Owns the model on its device, the optimizer, the schedule and the run dir's logs."""

    def __init__(
        self,
        model: nn.Module,
        objective: nn.Module,
        cfg: DictConfig,
        full_cfg: DictConfig,
        run_dir: Path,
        dist: DistInfo,
        device: torch.device,
        steps_per_epoch: int,
        store_id: str | None = None,
        view_sizes: dict[str, int] | None = None,
    ) -> None:
        check_trainer_config(cfg)
        self.cfg, self.full_cfg, self.run_dir, self.dist, self.device = (
            cfg,
            full_cfg,
            Path(run_dir),
            dist,
            device,
        )
        self.store_id = store_id  # what the store holds (its manifest's fingerprint): a resume must match it
        self.view_sizes = view_sizes  # recorded in every checkpoint: a store of other sizes is refused later
        self.precision = str(cfg.precision)
        if self.precision != "32" and device.type != "cuda":
            log.info("trainer.precision=%s needs CUDA; training in fp32 on %s", self.precision, device)
        channels_last = cfg.channels_last == "auto" and device.type == "cuda" or cfg.channels_last is True
        self.model = model.to(device)
        if channels_last:
            self.model = self.model.to(memory_format=torch.channels_last)
            for enc in getattr(self.model, "image_encoders", {}).values():
                enc.channels_last = True
        self.objective = objective
        self.optimizer = build_optimizer(self.model, cfg)
        self.accumulate = max(1, int(cfg.accumulate))
        self.scheduler = build_scheduler(self.optimizer, cfg, math.ceil(steps_per_epoch / self.accumulate))
        self.scaler = torch.amp.GradScaler("cuda", enabled=device.type == "cuda" and self.precision == "fp16")
        self.train_model: nn.Module = self.model
        if dist.enabled:
            from torch.nn.parallel import DistributedDataParallel

            ids = [device.index] if device.type == "cuda" else None
            self.train_model = DistributedDataParallel(
                self.model, device_ids=ids, find_unused_parameters=False
            )
        if bool(cfg.compile):
            self.train_model = torch.compile(self.train_model)
        self.start_epoch = 0
        self.best_map = -math.inf
        self.best_epoch = -1
        self.best_val: dict[str, Any] = {}
        self.bad_epochs = 0
        self.aug_generator = torch.Generator().manual_seed(int(full_cfg.seed) + 7919 * dist.rank)
        self._tb = None
        self._rows: list[dict[str, Any]] = []  # metrics.csv, rewritten whole after every epoch

    # ------------------------------------------------------------------ resume
    def resume(self, checkpoint: Path) -> None:
        """Restore weights, optimizer, scheduler, RNG and counters from a ``last`` checkpoint.

        Refused when the checkpoint was trained on another store or with other settings (naming the
        first key that differs). ``metrics.csv`` keeps exactly the epochs the checkpoint has seen: a row is
        written only after its checkpoint, and ``last`` carries its epoch's row, so a kill (or a full disk)
        between the two neither duplicates nor loses a row.
        """
        self._check_resumable(checkpoint)
        meta = load_weights(self.model, checkpoint)
        state = load_training_state(checkpoint)
        self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])
        if state.get("scaler"):
            self.scaler.load_state_dict(state["scaler"])
        set_rng_state(state["rng"])
        self.aug_generator.set_state(state["aug_rng"])
        self.start_epoch = int(meta["epoch"]) + 1
        self.best_map = float(state["best_map"])
        self.best_epoch = int(state["best_epoch"])
        self.bad_epochs = int(state["bad_epochs"])
        self.best_val = meta.get("best_val", {})
        self._rows = [
            r for r in _read_rows(self.run_dir / "metrics.csv") if int(float(r["epoch"])) < self.start_epoch
        ]
        logged = {int(float(r["epoch"])) for r in self._rows}
        if isinstance(meta.get("row"), dict) and int(meta["epoch"]) not in logged:
            self._rows.append(meta["row"])  # killed between last/ and its row: the checkpoint kept it
        log.info("resumed from %s at epoch %d", checkpoint, self.start_epoch)

    def _check_resumable(self, checkpoint: Path) -> None:
        from emotic_mm.checkpoint import load_config, read_meta

        saved = OmegaConf.to_container(load_config(checkpoint), resolve=True)
        now = OmegaConf.to_container(self.full_cfg, resolve=True)
        saved_store, now_store = read_meta(checkpoint).get("store"), self.store_id
        if saved_store is not None and now_store is not None and saved_store != now_store:
            raise ConfigError(
                f"trainer.resume: {checkpoint} was trained on another store than "
                f"data.prepared_dir={now.get('data', {}).get('prepared_dir')} (its manifest differs)"
            )
        from emotic_mm.defenses.registry import weights_defense

        for key in ("model", "defense", "loss", "seed", "trainer"):
            a, b = saved.get(key), now.get(key)
            if key == "defense":  # what shapes the weights (a detector's or a certificate's settings do not)
                a, b = weights_defense(saved), weights_defense(now)
            if key == "trainer":
                a, b = ({k: v for k, v in (t or {}).items() if k not in RESUME_MAY_CHANGE} for t in (a, b))
            where = _first_difference(a, b, key)
            if where is not None:
                raise ConfigError(
                    f"trainer.resume: {checkpoint} was trained with a different {where} "
                    "(resume with the run's own settings, or start a new run dir)"
                )

    # ------------------------------------------------------------------ loop
    def fit(self, train_loader: DataLoader, val_loader: DataLoader) -> FitResult:
        history: list[EpochLog] = []
        stopped = False
        for epoch in range(self.start_epoch, int(self.cfg.epochs)):
            if isinstance(train_loader.sampler, DistributedSampler):
                train_loader.sampler.set_epoch(epoch)
            started = time.time()
            loss, parts, images = self._train_epoch(train_loader, epoch)
            seconds = time.time() - started
            val = self.validate(val_loader)
            entry = EpochLog(
                epoch,
                loss,
                parts,
                val,
                self.optimizer.param_groups[0]["lr"],
                seconds,
                images / max(seconds, 1e-9),
            )
            history.append(entry)
            improved = val["map"] > self.best_map
            if improved:
                self.best_map, self.best_epoch, self.best_val, self.bad_epochs = val["map"], epoch, val, 0
            else:
                self.bad_epochs += 1
            if self.dist.is_main:  # checkpoints first: an epoch's row lands only once its checkpoints have
                row = self._row(entry)
                if improved:
                    self._save("best", epoch, val)
                self._save("last", epoch, val, row)  # last holds the row: a kill before the CSV loses none
                self._log_epoch(entry, row)
            barrier(self.dist)
            patience = int(self.cfg.early_stopping_patience)
            if patience > 0 and self.bad_epochs >= patience:
                stopped = True
                log.info("early stopping after epoch %d (no val mAP gain for %d epochs)", epoch, patience)
                break
        if self._tb is not None:
            self._tb.close()
        return FitResult(self.best_epoch, self.best_val, history, stopped)

    def _train_epoch(self, loader: DataLoader, epoch: int) -> tuple[float, dict[str, float], int]:
        from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

        self.train_model.train()
        total, parts_sum, seen, steps = 0.0, {}, 0, 0
        aug = self.cfg.augment
        n_batches = len(loader)
        self.optimizer.zero_grad(set_to_none=True)
        columns = (
            TextColumn(f"[bold]epoch {epoch + 1}/{int(self.cfg.epochs)}"),
            BarColumn(),
            TextColumn("{task.completed}/{task.total}"),
            TextColumn("[cyan]{task.fields[info]}"),
            TimeElapsedColumn(),
        )
        started = time.time()
        with Progress(
            *columns, console=console, disable=not (self.dist.is_main and console.is_terminal)
        ) as bar:
            task = bar.add_task("train", total=n_batches, info="")
            for i, batch in enumerate(loader):
                batch = to_device(batch, self.device, non_blocking=True)
                batch = augment_batch(
                    batch, bool(aug.flip), float(aug.brightness), float(aug.contrast), self.aug_generator
                )
                with autocast_for(self.device, self.precision):
                    out = self.train_model(batch)
                loss, parts = self.objective(out, batch)
                self.scaler.scale(loss / self.accumulate).backward()
                if (i + 1) % self.accumulate == 0 or i + 1 == n_batches:
                    self._optimizer_step()
                bs = batch["categories"].shape[0]
                seen += bs
                steps += 1
                total += float(loss.detach())
                for k, v in parts.items():
                    parts_sum[k] = parts_sum.get(k, 0.0) + v
                rate = seen * self.dist.world_size / max(time.time() - started, 1e-9)
                bar.update(task, advance=1, info=f"loss {total / steps:.4f} · {rate:.0f} img/s")
        return (
            total / max(steps, 1),
            {k: v / max(steps, 1) for k, v in parts_sum.items()},
            seen * self.dist.world_size,
        )

    def _optimizer_step(self) -> None:
        clip = float(self.cfg.grad_clip)
        if clip > 0:
            self.scaler.unscale_(self.optimizer)
            torch.nn.utils.clip_grad_norm_(self.model.parameters(), clip)
        self.scaler.step(self.optimizer)
        self.scaler.update()
        self.optimizer.zero_grad(set_to_none=True)
        self.scheduler.step()

    def validate(self, loader: DataLoader) -> dict[str, Any]:
        out = collect_outputs(self.model, loader, self.device, self.precision)
        metrics = emotion_metrics(
            out["logits"], out["categories"], out["vad_pred"], out["vad_true"], out.get("votes")
        )
        return {k: v for k, v in metrics.items() if not k.startswith("per_category")}

    # ------------------------------------------------------------------ outputs
    def _save(self, name: str, epoch: int, val: dict[str, Any], row: dict[str, Any] | None = None) -> None:
        state = {
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict(),
            "scaler": self.scaler.state_dict() if self.scaler.is_enabled() else {},
            "rng": rng_state(),
            "aug_rng": self.aug_generator.get_state(),
            "best_map": self.best_map,
            "best_epoch": self.best_epoch,
            "bad_epochs": self.bad_epochs,
        }
        meta = {
            "epoch": epoch,
            "val": val,
            "best_val": self.best_val,
            "best_epoch": self.best_epoch,
            "seed": int(self.full_cfg.seed),
            "store": self.store_id,
            "view_sizes": self.view_sizes,
        }
        if row is not None:
            meta["row"] = row
        save_checkpoint(self.run_dir / name, self.model, self.full_cfg, meta, state)

    @staticmethod
    def _row(e: EpochLog) -> dict[str, Any]:
        """The epoch's ``metrics.csv`` row."""
        return {
            "epoch": e.epoch,
            "train_loss": e.train_loss,
            **{f"train_{k}": v for k, v in e.parts.items()},
            **{f"val_{k}": v for k, v in e.val.items()},
            "lr": e.lr,
            "seconds": e.seconds,
            "images_per_s": e.images_per_s,
        }

    def _log_epoch(self, e: EpochLog, row: dict[str, Any]) -> None:
        self._rows.append(row)
        fields = list(dict.fromkeys(k for r in self._rows for k in r))
        with atomic_file(self.run_dir / "metrics.csv") as tmp, open(tmp, "w", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=fields)
            writer.writeheader()
            writer.writerows(self._rows)
        if self.cfg.tensorboard:
            if self._tb is None:
                from torch.utils.tensorboard import SummaryWriter

                self._tb = SummaryWriter(str(self.run_dir / "tensorboard"))
            for k, v in row.items():
                if k != "epoch" and isinstance(v, (int, float)):
                    self._tb.add_scalar(k.replace("_", "/", 1), v, e.epoch)
        console.print(
            f"epoch {e.epoch + 1}: loss {e.train_loss:.4f} · val mAP {e.val['map']:.4f} · "
            f"dominant {e.val['dominant_acc']:.3f} · VAD MAE {e.val['vad_mae']:.3f} · "
            f"{e.images_per_s:.0f} img/s"
        )


def _read_rows(path: Path) -> list[dict[str, Any]]:
    if not path.is_file():
        return []
    with open(path, newline="") as f:
        return [dict(r) for r in csv.DictReader(f)]


def _first_difference(a: Any, b: Any, key: str) -> str | None:
    """The dotted key of the first value that differs between two plain containers (``None``: equal)."""
    if isinstance(a, dict) and isinstance(b, dict):
        for k in sorted(set(a) | set(b)):
            found = _first_difference(a.get(k), b.get(k), f"{key}.{k}")
            if found is not None:
                return found
        return None
    return None if a == b else f"{key} ({a!r} then, {b!r} now)"
