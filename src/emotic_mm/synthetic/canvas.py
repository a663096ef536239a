"""Painting on a float image: antialiased shape masks (drawn supersampled) filled with a texture.

Every part of the world — a sleeve, a mouth, a balloon — is painted the same way: a mask drawn with
PIL at ``scale`` times the resolution, averaged down (antialiased edges, as a camera would give), and
composited with a texture. Keeping one primitive makes the cue-scale test meaningful: a cue changes
exactly the pixels its masks cover.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from PIL import Image, ImageDraw

Point = tuple[float, float]


class Layer:
    """A mask over the region ``(x0, y0, x0 + w, y0 + h)`` of an image, drawn at ``scale``x."""

    def __init__(self, x0: int, y0: int, w: int, h: int, scale: int):
        self.x0, self.y0, self.w, self.h, self.s = x0, y0, w, h, scale
        self.mask = Image.new("L", (w * scale, h * scale), 0)
        self.draw = ImageDraw.Draw(self.mask)

    def _p(self, p: Point) -> tuple[float, float]:
        return ((p[0] - self.x0) * self.s, (p[1] - self.y0) * self.s)

    def ellipse(self, cx: float, cy: float, rx: float, ry: float, fill: int = 255) -> None:
        x, y = self._p((cx, cy))
        self.draw.ellipse((x - rx * self.s, y - ry * self.s, x + rx * self.s, y + ry * self.s), fill=fill)

    def polygon(self, points: Sequence[Point], fill: int = 255) -> None:
        self.draw.polygon([self._p(p) for p in points], fill=fill)

    def line(self, points: Sequence[Point], width: float, fill: int = 255) -> None:
        """A thick polyline with round joints and caps (limbs, strings, brows, mouths)."""
        pts = [self._p(p) for p in points]
        w = max(1, int(round(width * self.s)))
        self.draw.line(pts, fill=fill, width=w, joint="curve")
        r = w / 2
        for x, y in (pts[0], pts[-1]):
            self.draw.ellipse((x - r, y - r, x + r, y + r), fill=fill)

    def ring(self, cx: float, cy: float, r: float, width: float, fill: int = 255) -> None:
        x, y = self._p((cx, cy))
        self.draw.ellipse(
            (x - r * self.s, y - r * self.s, x + r * self.s, y + r * self.s),
            outline=fill,
            width=max(1, int(round(width * self.s))),
        )


def region(image: np.ndarray, x0: float, y0: float, x1: float, y1: float) -> tuple[int, int, int, int] | None:
    """The integer region ``(x0, y0, w, h)`` of ``image`` covering the float box, or None if outside."""
    height, width = image.shape[:2]
    a, b = max(0, int(np.floor(x0))), max(0, int(np.floor(y0)))
    c, d = min(width, int(np.ceil(x1)) + 1), min(height, int(np.ceil(y1)) + 1)
    if c - a < 1 or d - b < 1:
        return None
    return a, b, c - a, d - b


def _window(layer: Layer) -> tuple[int, int, int, int, np.ndarray] | None:
    """The part of the layer its mask touches, ``(x, y, w, h)`` in layer pixels, and its alpha (0-1)."""
    bbox = layer.mask.getbbox()
    if bbox is None:
        return None
    s = layer.s
    a, b = bbox[0] // s, bbox[1] // s
    c, d = min(layer.w, -(-bbox[2] // s)), min(layer.h, -(-bbox[3] // s))
    small = layer.mask.crop((a * s, b * s, c * s, d * s))
    small = small.reduce(s) if s > 1 else small
    return a, b, c - a, d - b, np.asarray(small, dtype=np.float32) * np.float32(1 / 255)


def paint(
    image: np.ndarray, layer: Layer, texture: np.ndarray, opacity: float = 1.0
) -> tuple[int, int, int, int] | None:
    """Composite ``texture`` (an (h, w, 3) array over the layer) through the layer's mask into ``image``
    in place; returns the image box ``(x1, y1, x2, y2)`` the paint touched (None: nothing). Only that
    window is computed."""
    window = _window(layer)
    if window is None:
        return None
    a, b, w, h, alpha = window
    if opacity != 1.0:
        alpha = alpha * np.float32(opacity)
    view = image[layer.y0 + b : layer.y0 + b + h, layer.x0 + a : layer.x0 + a + w]
    view += alpha[:, :, None] * (texture[b : b + h, a : a + w] - view)
    return layer.x0 + a, layer.y0 + b, layer.x0 + a + w, layer.y0 + b + h


def shade(image: np.ndarray, layer: Layer, factor: float) -> None:
    """Multiply the pixels under the mask by ``factor`` (shadows: darker, no colour of their own)."""
    window = _window(layer)
    if window is None:
        return
    a, b, w, h, alpha = window
    view = image[layer.y0 + b : layer.y0 + b + h, layer.x0 + a : layer.x0 + a + w]
    view *= (1.0 - alpha * np.float32(1.0 - factor))[:, :, None]
