"""What a model reads from a loader batch: the one definition of its input keys, shared by training,
inference, the attacks and the test-time defenses."""

from __future__ import annotations

import torch

INPUT_KEYS = ("context", "body", "input_ids", "attention_mask")  # what a model reads from a batch


def model_inputs(batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """The model's inputs of a loader batch (labels and indices left out)."""
    return {k: v for k, v in batch.items() if k in INPUT_KEYS}


def to_device(batch: dict[str, torch.Tensor], device: torch.device,
              non_blocking: bool = False) -> dict[str, torch.Tensor]:
    return {k: v.to(device, non_blocking=non_blocking) for k, v in batch.items()}
