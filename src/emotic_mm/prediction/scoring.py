"""The checkpoint's model over the input's persons: tokenised with ``prepare``'s function, streamed through
a DataLoader, its outputs collected in input order."""

from __future__ import annotations

from typing import Any

import torch
from torch import nn
from torch.utils.data import DataLoader

from emotic_mm.data.photos import Photo, PhotoDataset
from emotic_mm.data.tokens import load_tokenizer, tokenize
from emotic_mm.errors import DataFormatError
from emotic_mm.prediction.preprocessing import Preprocessing
from emotic_mm.progress import progress_bar
from emotic_mm.training.inference import collect_outputs


def score(
    model: nn.Module,
    photos: list[Photo],
    prep: Preprocessing,
    device: torch.device,
    batch_size: int,
    workers: int,
    precision: str,
) -> dict[str, Any]:
    """The model's outputs (``logits``, ``vad_pred``, ...) for every photo, in input order."""
    ids = lengths = None
    if "text" in prep.modalities:
        tokens = tokenize([p.text or "" for p in photos], load_tokenizer(prep.tokenizer), prep.max_length)
        ids, lengths = tokens.ids, tokens.lengths
    data = PhotoDataset(photos, prep.modalities, prep.context_size, prep.body_size, ids, lengths)
    loader = DataLoader(data, batch_size=batch_size, num_workers=workers, pin_memory=device.type == "cuda")
    with progress_bar("predict", total=len(photos), unit="images") as advance:
        return collect_outputs(model, _checked(loader, photos, advance), device, precision)


def _checked(loader: DataLoader, photos: list[Photo], advance: Any):
    """The loader's batches; a photo that failed to decode stops the run with one line naming it."""
    for batch in loader:
        bad = batch.pop("error").nonzero().flatten()
        if len(bad):
            p = photos[int(batch["index"][bad[0]])]
            raise DataFormatError(f"{p.where}: the image header reads but the pixels do not decode")
        yield batch
        advance(len(batch["index"]))
