"""New photos for ``emotic-mm predict``: input rows, their checks, and a Dataset that decodes them
with exactly the functions ``prepare`` uses (:mod:`emotic_mm.data.images`).

An input is one image (with an optional box and description) or a CSV with columns ``path`` and
optionally ``x1, y1, x2, y2`` and ``text``; relative paths are read relative to the CSV's folder.
Everything a user can get wrong (a missing file, an unreadable image, a box outside the image) is
checked before the model runs and reported as one line naming the row.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from PIL import Image, UnidentifiedImageError
from torch.utils.data import Dataset

from emotic_mm.data.images import EmptyCropError, ImageDecodeError, clamp_box, context_view, open_rgb, person_crop
from emotic_mm.data.text import PersonMeta
from emotic_mm.errors import ConfigError, DataFormatError

BOX_COLUMNS = ("x1", "y1", "x2", "y2")


@dataclass
class Photo:
    """One person to score. ``bbox`` is the box as given (``None``: the whole image is the body)."""

    row: int
    where: str  # how messages name it: "photo.jpg" or "people.csv row 3 (photo.jpg)"
    path: Path | None
    bbox: tuple[float, float, float, float] | None = None
    text: str | None = None
    text_source: str | None = None  # "given", or the source that described it (template, captioner)
    image_size: tuple[int, int] | None = None  # (width, height), filled by check_photos
    box: tuple[int, int, int, int] | None = None  # clamped, filled by check_photos
    warning: str | None = None  # why its scores may mean little (too small a picture or box)

    def meta(self, folder: str | None = None) -> PersonMeta:
        """What a description source may know: the box and image size; gender and age are unknown.
        ``folder`` defaults to the image's folder name (EMOTIC's ``Folder`` names the source database)."""
        width, height = self.image_size or (0, 0)
        box = self.box or (0, 0, width, height)
        return PersonMeta(folder=folder if folder is not None else (self.path.parent.name if self.path else ""),
                          filename=self.path.name if self.path else "", person_index=self.row,
                          image_width=width, image_height=height, bbox=tuple(self.bbox or box), box=box,
                          gender="", age="")


def parse_box(value: object, where: str) -> tuple[float, float, float, float] | None:
    """``[x1, y1, x2, y2]`` in pixels of the image as stored, or ``None``."""
    if value is None:
        return None
    try:
        box = tuple(float(v) for v in value)  # type: ignore[union-attr]
    except (TypeError, ValueError):
        raise ConfigError(f"{where}: bbox={value!r} is not four numbers [x1,y1,x2,y2]") from None
    if len(box) != 4 or any(v != v for v in box):
        raise ConfigError(f"{where}: bbox={list(value)!r} is not four numbers [x1,y1,x2,y2]")  # type: ignore[call-overload]
    if box[2] <= box[0] or box[3] <= box[1]:
        raise ConfigError(f"{where}: bbox={[_num(v) for v in box]} is empty (need x1 < x2 and y1 < y2)")
    return box  # type: ignore[return-value]


def read_csv_input(path: Path) -> list[Photo]:
    """Rows of a CSV input; empty cells mean no box / no text for that row."""
    try:
        frame = pd.read_csv(path, dtype=str, keep_default_na=False)
    except (ValueError, pd.errors.ParserError, UnicodeDecodeError) as exc:
        raise DataFormatError(f"{path}: cannot parse as CSV ({exc})") from None
    columns = {c.strip().lower(): c for c in frame.columns}
    unknown = [c for c in frame.columns if c.strip().lower() not in ("path", *BOX_COLUMNS, "text")]
    if unknown:
        raise DataFormatError(f"{path}: unknown column(s) {', '.join(map(str, unknown))}; "
                              f"expected path, x1, y1, x2, y2, text")
    if "path" not in columns and "text" not in columns:
        raise DataFormatError(f"{path}: needs a column path (and optionally x1, y1, x2, y2, text); "
                              f"found {', '.join(map(str, frame.columns)) or 'none'}")
    box_columns = [c for c in BOX_COLUMNS if c in columns]
    if box_columns and len(box_columns) != 4:
        raise DataFormatError(f"{path}: box columns need all of x1, y1, x2, y2 (found {', '.join(box_columns)})")
    photos = []
    for i, record in enumerate(frame.to_dict("records")):
        cell = {k: str(record[c]).strip() for k, c in columns.items()}
        image = cell.get("path", "")
        where = f"{path.name} row {i + 1}" + (f" ({image})" if image else "")
        values = [cell[c] for c in BOX_COLUMNS] if box_columns else []
        if any(values) and not all(values):
            raise DataFormatError(f"{where}: give all of x1, y1, x2, y2 or none")
        photos.append(Photo(row=i, where=where, path=_resolve(image, path.parent) if image else None,
                            bbox=parse_box(values, where) if values and all(values) else None,
                            text=cell.get("text") or None))
    if not photos:
        raise DataFormatError(f"{path}: no rows")
    return photos


def _resolve(image: str, base: Path) -> Path:
    p = Path(image).expanduser()
    return p if p.is_absolute() else base / p


def _num(v: float) -> float | int:
    return int(v) if float(v).is_integer() else v


def check_photos(photos: Sequence[Photo], needs_image: bool) -> None:
    """Read each image's size (header only) and clamp its box the way ``prepare`` does; one line per problem."""
    for p in photos:
        if p.path is None:
            if needs_image:
                raise DataFormatError(f"{p.where}: no image path, but the checkpoint reads pictures")
            continue
        if not p.path.is_file():
            raise DataFormatError(f"{p.where}: no such image file" + (f" ({p.path})" if str(p.path) not in p.where else ""))
        try:
            with Image.open(p.path) as image:
                width, height = image.size
        except Image.DecompressionBombError as exc:
            raise DataFormatError(f"{p.where}: image too large to decode safely ({exc})") from None
        except (UnidentifiedImageError, OSError, ValueError) as exc:
            raise DataFormatError(f"{p.where}: not a readable image ({exc})") from None
        p.image_size = (width, height)
        if p.bbox is None:
            p.box = (0, 0, width, height)
            continue
        box = clamp_box(p.bbox, width, height)
        if box[2] <= box[0] or box[3] <= box[1]:
            raise DataFormatError(f"{p.where}: bbox={[_num(v) for v in p.bbox]} lies outside the "
                                  f"{width}x{height} image")
        p.box = box


def small_warning(p: Photo, min_side: int, body: bool) -> str | None:
    """Why a person's scores may mean little: the picture (or, for a model that reads the body, its box)
    has a side below ``min_side`` px, so the views are blown up from too few pixels to show a person.
    ``prepare`` keeps such persons too; predict says so per row instead of staying silent."""
    for what, size in (("picture", p.image_size), ("box", _box_size(p.box) if body and p.bbox else None)):
        if size is not None and min(size) < min_side:
            return (f"{what} {size[0]}x{size[1]} px has a side below {min_side} px (the smallest view): "
                    f"too small or too thin to show a person; its scores are not meaningful")
    return None


def _box_size(box: tuple[int, int, int, int] | None) -> tuple[int, int] | None:
    return None if box is None else (box[2] - box[0], box[3] - box[1])


class PhotoDataset(Dataset):
    """Model inputs per photo: uint8 (C, H, W) views decoded like ``prepare``, pre-tokenised text.

    A file that passed the header check but fails to decode gives ``error=1`` instead of raising in a
    worker process, so the stage can name it in one line.
    """

    def __init__(self, photos: Sequence[Photo], modalities: Sequence[str], context_size: int, body_size: int,
                 token_ids: np.ndarray | None = None, token_lengths: np.ndarray | None = None) -> None:
        self.photos = list(photos)
        self.modalities = tuple(modalities)
        self.context_size, self.body_size = int(context_size), int(body_size)
        self.token_ids, self.token_lengths = token_ids, token_lengths

    def __len__(self) -> int:
        return len(self.photos)

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        p = self.photos[i]
        out = {"index": torch.tensor(i), "error": torch.tensor(0)}
        if "context" in self.modalities or "body" in self.modalities:
            context = np.zeros((self.context_size, self.context_size, 3), np.uint8)
            body = np.zeros((self.body_size, self.body_size, 3), np.uint8)
            try:
                image = open_rgb(p.path)  # type: ignore[arg-type]
                context = context_view(image, self.context_size)
                body, _ = person_crop(image, p.bbox or (0, 0, image.width, image.height), image.width,
                                      image.height, self.body_size)
            except (FileNotFoundError, ImageDecodeError, EmptyCropError):
                out["error"] = torch.tensor(1)
            if "context" in self.modalities:
                out["context"] = torch.from_numpy(context.copy()).permute(2, 0, 1).contiguous()  # PIL arrays are read-only
            if "body" in self.modalities:
                out["body"] = torch.from_numpy(body.copy()).permute(2, 0, 1).contiguous()
        if "text" in self.modalities and self.token_ids is not None and self.token_lengths is not None:
            ids = torch.from_numpy(self.token_ids[i].astype(np.int64))
            out["input_ids"] = ids
            out["attention_mask"] = (torch.arange(ids.shape[0]) < int(self.token_lengths[i])).long()
        return out
