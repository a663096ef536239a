"""Pixel preprocessing shared by ``prepare`` and ``predict``: one function, so both see the same arrays.

Semantics follow the community converter (see ``shared/EMOTIC_FORMAT.md``): read as RGB (grayscale and
palette images converted), clamp the box to the annotated image size and truncate to int, context = the
whole image resized, body = the clamped crop resized, both with bilinear interpolation. PIL is used
directly rather than torchvision so that decode workers never import torch.
"""

from __future__ import annotations

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


def open_rgb(path: Path) -> Image.Image:
    """Decode an image file as 8-bit RGB; raises FileNotFoundError or ImageDecodeError."""
    try:
        with Image.open(path) as image:
            image.load()
            return image.convert("RGB")
    except FileNotFoundError:
        raise
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError) as exc:
        raise ImageDecodeError(f"{path}: {exc}") from None


def clamp_box(bbox: Sequence[float], width: int, height: int) -> tuple[int, int, int, int]:
    """Clamp x to [0, width] and y to [0, height], then truncate to int (the community converter's rule)."""
    x1, y1, x2, y2 = (float(v) for v in bbox)
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
