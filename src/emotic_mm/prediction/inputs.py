"""The persons ``predict`` scores: read from ``input=`` (a photo, a CSV of them, or text alone), pictures
too small to show a person flagged, and persons without text described the way ``prepare`` would."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf

from emotic_mm.config import whole_number
from emotic_mm.data.photos import Photo, parse_box, read_csv_input, small_warning
from emotic_mm.data.text import SOURCE_CAPTIONER, SOURCE_TEMPLATE, make_describer
from emotic_mm.errors import ConfigError, DataFormatError
from emotic_mm.prediction.preprocessing import Preprocessing


def read_input(cfg: DictConfig, prep: Preprocessing) -> list[Photo]:
    """One photo (``input=photo.jpg bbox=[...] text=...``), a CSV of them, or text alone for a
    text-only checkpoint."""
    given = cfg.get("input")
    text = cfg.get("description")  # text=... on the command line
    if given in (None, ""):
        if prep.needs_image or text in (None, ""):
            raise ConfigError(
                'input is not set: pass input=photo.jpg (optionally bbox=[x1,y1,x2,y2] text="...") '
                "or input=people.csv"
            )
        return [Photo(row=0, where="text", path=None, text=str(text))]
    path = Path(str(given)).expanduser()
    if path.suffix.lower() == ".csv":
        if cfg.get("bbox") is not None or text not in (None, ""):
            raise ConfigError(
                "bbox= and text= go with a single image; in a CSV input give them as columns "
                "x1, y1, x2, y2, text"
            )
        if not path.is_file():
            raise DataFormatError(f"{path}: input CSV not found")
        return read_csv_input(path)
    bbox = cfg.get("bbox")
    return [
        Photo(
            row=0,
            where=str(path),
            path=path,
            bbox=parse_box(list(bbox) if bbox is not None else None, str(path)),
            text=str(text) if text not in (None, "") else None,
        )
    ]


def flag_small(photos: list[Photo], prep: Preprocessing, min_side: Any = None) -> list[Photo]:
    """Mark each row whose picture or box is below ``min_side`` px (default: the smallest view the
    checkpoint reads) with a warning for its output record; returns the marked rows, for the log."""
    views = {"context": prep.context_size, "body": prep.body_size}
    read = [size for view, size in views.items() if view in prep.modalities]
    if not read:
        return []
    threshold = min(read) if min_side is None else whole_number(min_side, "min_side", 1)
    for p in photos:
        p.warning = small_warning(p, threshold, "body" in prep.modalities)
    return [p for p in photos if p.warning]


def describe_missing(photos: list[Photo], prep: Preprocessing, fallback: str) -> None:
    """Give every person without text the description ``prepare`` would have given (or fail, with
    ``text_fallback=none``). Photos keep which source their text came from."""
    for p in photos:
        if p.text is not None:
            p.text_source = "given"
    missing = [p for p in photos if p.text is None]
    if not missing or "text" not in prep.modalities:
        return
    if fallback == "none":
        raise DataFormatError(
            f"{missing[0].where}: no text, and the checkpoint reads text "
            f"(text_fallback=none; trained on {prep.text_source!r} descriptions)"
        )
    if fallback != "checkpoint":
        raise ConfigError(f"text_fallback={fallback!r} is not one of checkpoint, none")
    if prep.fallback_source == SOURCE_CAPTIONER:
        if any(p.path is None for p in missing):
            raise DataFormatError(f"{missing[0].where}: no text and no image to caption")
        describe = make_describer(prep.text_cfg, Path("/"))
        metas = [p.meta(folder=str(p.path.resolve().parent)) for p in missing]  # type: ignore[union-attr]
    else:
        describe = make_describer(OmegaConf.create({"source": SOURCE_TEMPLATE}), Path("."))
        metas = [p.meta() for p in missing]
    described = describe(metas)
    for p, text, source in zip(missing, described.texts, described.sources):
        p.text, p.text_source = text, source
