"""Learning-rate schedules as ``_target_`` functions of one signature.

``trainer.scheduler`` names one of these (or any callable ``(optimizer, steps_per_epoch, epochs, **kw)``
returning a ``torch.optim.lr_scheduler.LRScheduler``): the trainer supplies the three runtime arguments,
the config supplies the rest. All are stepped once per optimizer step.
"""

from __future__ import annotations

import torch
from torch.optim.lr_scheduler import CosineAnnealingLR, LambdaLR, LRScheduler, StepLR


def cosine(
    optimizer: torch.optim.Optimizer, steps_per_epoch: int, epochs: int, min_lr: float = 0.0
) -> LRScheduler:
    """Cosine decay to ``min_lr`` over the whole run."""
    return CosineAnnealingLR(optimizer, T_max=max(1, steps_per_epoch * epochs), eta_min=min_lr)


def step(
    optimizer: torch.optim.Optimizer,
    steps_per_epoch: int,
    epochs: int,
    step_epochs: int = 7,
    gamma: float = 0.1,
) -> LRScheduler:
    """× ``gamma`` every ``step_epochs`` epochs (the EMOTIC literature's SGD schedule)."""
    return StepLR(optimizer, step_size=max(1, steps_per_epoch * step_epochs), gamma=gamma)


def constant(optimizer: torch.optim.Optimizer, steps_per_epoch: int, epochs: int) -> LRScheduler:
    """No schedule: the optimizer's learning rate throughout."""
    return LambdaLR(optimizer, lambda _: 1.0)
