"""A fixed image encoder's memoised features, kept on disk between runs.

A frozen pretrained backbone is a pure function of the picture, so the features one training computed
for the store's pictures are the features the next training would compute: the demo's second model,
the study's clean models and every poisoned model of the poisoning grid read them instead of running
the backbone over every picture again. A file is named by a digest of everything the features depend
on — the backbone's weights (their bytes), architecture, working resolution, input defense, memory
layout, torch version and device type — so a changed backbone or a different machine never reads another's
features. Files are written whole (temp file, then rename); concurrent writers each leave a complete file.
"""

from __future__ import annotations

import hashlib
import logging
from pathlib import Path
from typing import Any

import numpy as np
import torch

from emotic_mm.fsutil import atomic_file

log = logging.getLogger(__name__)


def identity(encoder: torch.nn.Module, device: torch.device) -> str:
    """A digest of what the encoder's features depend on (see the module docstring)."""
    digest = hashlib.blake2b(digest_size=12)
    for name, tensor in encoder.backbone.state_dict().items():
        digest.update(name.encode())
        digest.update(tensor.detach().cpu().contiguous().numpy().tobytes())
    described = (
        type(encoder.backbone).__name__,
        encoder.input_size,
        encoder.channels_last,
        encoder.normalise,
        tuple(encoder.pixel_mean),
        tuple(encoder.pixel_std),
        torch.__version__,
        device.type,
    )
    if encoder.input_defense is not None:  # a deterministic defense in front: its features, not the bare ones
        described += (repr(encoder.input_defense),)
    digest.update(repr(described).encode())
    return digest.hexdigest()


def folder(cfg: Any) -> Path:
    """Where a run keeps fixed encoders' features: ``<paths.data_dir>/features``."""
    return Path(str(cfg.paths.data_dir)) / "features"


def cache_file(folder: Path, view: str, encoder: torch.nn.Module, device: torch.device) -> Path:
    return Path(folder) / f"{view}-{identity(encoder, device)}.npz"


def load(file: Path, encoder: torch.nn.Module, device: torch.device) -> list[bytes]:
    """Put the file's features into the encoder's memo; returns their keys (none when the file is absent
    or unreadable: the features are then computed as if it were not there)."""
    if not file.is_file():
        return []
    try:
        with np.load(file) as saved:
            keys, features = saved["keys"], saved["features"]
    except (OSError, ValueError, KeyError) as err:
        log.warning("%s: unreadable feature cache (%s); computing the features again", file, err)
        return []
    listed = [bytes(row) for row in keys]
    encoder.memo.add(listed, torch.from_numpy(features).to(device))
    return listed


def save(file: Path, encoder: torch.nn.Module, keys: list[bytes]) -> None:
    """Write the memo's features of ``keys`` to ``file`` (whole, or not at all)."""
    held, features = encoder.memo.known(keys)
    if features is None:
        return
    with atomic_file(file) as tmp:
        np.savez(
            tmp,
            keys=np.frombuffer(b"".join(held), dtype=np.uint8).reshape(len(held), -1),
            features=features.cpu().numpy(),
        )
