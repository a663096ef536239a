"""Pixel preprocessing shared by ``prepare`` and ``predict``: one function, so both see the same arrays.

Semantics follow the community converter (see ``shared/EMOTIC_FORMAT.md``): read as RGB (grayscale and
palette images converted; 16-bit and float pictures scaled from their own range, never clipped into a
constant picture), clamp the box to the annotated image size and truncate to int, context = the
whole image resized, body = the clamped crop resized, both with bilinear interpolation. PIL is used
directly rather than torchvision so that decode workers never import torch.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

CONTEXT_SIZE = 224
BODY_SIZE = 128


class ImageDecodeError(Exception):
    """The file exists but is not a decodable image."""


class EmptyCropError(Exception):
    """The clamped box has no area, so there is no body crop."""


class ImageTooLargeError(ImageDecodeError):
    """The picture has more pixels than Pillow's decompression-bomb limit allows."""


class UnsupportedImageError(ImageDecodeError):
    """The picture decodes, but its values have no known scale to 8 bits (e.g. floats outside 0-255)."""


# Modes whose values are not 8-bit: Pillow's convert("RGB") clips them to 0-255, which turns a 16-bit
# picture (0-65535) into an almost uniform white one and a float picture in 0-1 into a black one.
WIDE_MODES = ("I;16", "I;16L", "I;16B", "I;16N", "I", "F")


def _to_8bit(image: Image.Image, path: Path) -> Image.Image:
    """A wide-mode picture (see ``WIDE_MODES``) as 8-bit grayscale, scaled from its own value range.

    16-bit integers (I;16*, and I holding 0-65535, as 16-bit PNG/TIFF decode) map 65535 → 255; floats
    in 0-1 map 1.0 → 255, floats in 0-255 are kept. Anything else has no scale we could justify.
    """
    values = np.asarray(image, dtype=np.float64)
    if values.size == 0 or not np.isfinite(values).all():
        raise UnsupportedImageError(f"{path}: mode {image.mode} picture with non-finite values")
    low, high = float(values.min()), float(values.max())
    if image.mode.startswith("I;16") or (image.mode == "I" and low >= 0 and high <= 65535):
        scaled = values / 257.0
    elif image.mode == "F" and low >= 0 and high <= 1.0:
        scaled = values * 255.0
    elif image.mode == "F" and low >= 0 and high <= 255.0:
        scaled = values
    else:
        raise UnsupportedImageError(f"{path}: mode {image.mode} values in [{low:g}, {high:g}] have no known "
                                    f"8-bit scale (expected 0-65535 for integers, 0-1 or 0-255 for floats)")
    return Image.fromarray(np.clip(np.rint(scaled), 0, 255).astype(np.uint8), "L")


def open_rgb(path: Path) -> Image.Image:
    """Decode an image file as 8-bit RGB; raises FileNotFoundError, ImageTooLargeError or ImageDecodeError."""
    try:
        with Image.open(path) as image:
            image.load()
            if image.mode in WIDE_MODES:
                return _to_8bit(image, Path(path)).convert("RGB")
            return image.convert("RGB")
    except FileNotFoundError:
        raise
    except Image.DecompressionBombError as exc:
        raise ImageTooLargeError(f"{path}: {exc}") from None
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError) as exc:
        raise ImageDecodeError(f"{path}: {exc}") from None


def is_constant(view: np.ndarray) -> bool:
    """Every pixel has the same value: nothing left to learn from (said in prepare's manifest and log)."""
    return bool(view.size) and bool((view == view.reshape(-1)[0]).all())


def clamp_box(bbox: Sequence[float], width: int, height: int) -> tuple[int, int, int, int]:
    """Clamp x to [0, width] and y to [0, height], then truncate to int (the community converter's rule)."""
    x1, y1, x2, y2 = (float(v) for v in bbox)
    if any(math.isnan(v) for v in (x1, y1, x2, y2)):  # max(0, nan) would silently read as 0
        raise EmptyCropError(f"box {list(bbox)} has a NaN coordinate")
    x1 = min(width, max(0.0, x1))
    x2 = min(width, max(0.0, x2))
    y1 = min(height, max(0.0, y1))
    y2 = min(height, max(0.0, y2))
    return int(x1), int(y1), int(x2), int(y2)


def resize_rgb(image: Image.Image, size: int) -> np.ndarray:
    """A (size, size, 3) uint8 array, bilinear."""
    return np.asarray(image.resize((size, size), Image.BILINEAR), dtype=np.uint8)


def context_view(image: Image.Image, size: int = CONTEXT_SIZE) -> np.ndarray:
    return resize_rgb(image, size)


def body_view(image: Image.Image, box: tuple[int, int, int, int], size: int = BODY_SIZE) -> np.ndarray:
    """The crop of an already clamped box, resized; raises EmptyCropError when nothing is inside."""
    x1, y1, x2, y2 = box
    x2, y2 = min(x2, image.width), min(y2, image.height)  # the file may be smaller than annotated
    if x2 <= x1 or y2 <= y1:
        raise EmptyCropError(f"empty crop {box} in a {image.width}x{image.height} image")
    return resize_rgb(image.crop((x1, y1, x2, y2)), size)


def person_crop(image: Image.Image, bbox: Sequence[float], width: int, height: int,
                size: int = BODY_SIZE) -> tuple[np.ndarray, tuple[int, int, int, int]]:
    """A person's body view and its clamped box, from the box as given (it may leave the image).

    ``width``/``height`` are the size the box is clamped to: the annotated size in ``prepare``, the
    decoded size in ``predict``. One function, so the two stages cannot drift apart.
    """
    box = clamp_box(bbox, width, height)
    return body_view(image, box, size), box
