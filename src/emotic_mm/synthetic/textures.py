"""Natural textures for the synthetic world: real photographs shipped in ``scikit-image`` and 1/f noise.

Why: flat colours and smooth gradients let a network read a cue from one global colour. Crops of real
photos (at random scales, flips and colour shifts) and 1/f noise carry the statistics of natural
images — edges, clutter, a power spectrum falling as 1/f — so a cue must be found by its shape and
place, as in a real photograph. Everything is read from files inside the installed package: nothing
is downloaded. Images are float32 arrays in 0-1, shape (H, W, 3), unless said otherwise.
"""

from __future__ import annotations

import importlib.util
from functools import lru_cache
from pathlib import Path

import numpy as np
from PIL import Image

# Colour photographs of real scenes (backdrops, clutter, clothing prints, screens and frames).
COLOUR_PHOTOS = ("coffee.png", "chelsea.png", "motorcycle_left.png", "rocket.jpg", "astronaut.png")
# Grey photographs of natural surfaces (tinted before use).
SURFACES = (
    "brick.png",
    "grass.png",
    "gravel.png",
    "camera.png",
    "page.png",
    "coins.png",
    "moon.png",
    "clock_motion.png",
)


def _data_dir() -> Path:
    spec = importlib.util.find_spec("skimage")
    if spec is None or not spec.submodule_search_locations:
        raise ModuleNotFoundError("the synthetic world needs scikit-image (pip install scikit-image)")
    return Path(next(iter(spec.submodule_search_locations))) / "data"


@lru_cache(maxsize=None)
def photo(name: str) -> Image.Image:
    """One shipped photograph, decoded once per process (RGB or L)."""
    with Image.open(_data_dir() / name) as image:
        image.load()
        return image.convert("RGB") if image.mode not in ("RGB", "L") else image.copy()


@lru_cache(maxsize=None)
def lfw_faces() -> np.ndarray:
    """The 100 real 25x25 face crops of ``lfw_subset.npy`` (float 0-1); the other 100 are not faces."""
    return np.load(_data_dir() / "lfw_subset.npy")[:100].astype(np.float32)


def crop(
    rng: np.random.Generator,
    name: str,
    width: int,
    height: int,
    min_scale: float = 0.25,
    max_scale: float = 1.0,
) -> np.ndarray:
    """A random crop of a photo (random scale, position, mirror), resized to ``width`` x ``height``."""
    source = photo(name)
    sw, sh = source.size
    aspect = width / max(height, 1)
    scale = rng.uniform(min_scale, max_scale)
    cw = min(sw, max(4, int(scale * min(sw, sh * aspect))))
    ch = min(sh, max(4, int(cw / aspect)))
    x0 = int(rng.integers(0, sw - cw + 1))
    y0 = int(rng.integers(0, sh - ch + 1))
    patch = source.crop((x0, y0, x0 + cw, y0 + ch)).resize((max(width, 1), max(height, 1)), Image.BILINEAR)
    out = np.asarray(patch, dtype=np.float32) / 255.0
    if out.ndim == 2:
        out = np.repeat(out[:, :, None], 3, axis=2)
    if rng.random() < 0.5:
        out = out[:, ::-1]
    return out


def luminance(rgb: np.ndarray) -> np.ndarray:
    return rgb @ np.array([0.299, 0.587, 0.114], dtype=np.float32)


def pink_noise(
    rng: np.random.Generator, width: int, height: int, beta: float = 2.0, base: int = 48
) -> np.ndarray:
    """Noise with a 1/f^(beta/2) amplitude spectrum, zero mean, unit std, (height, width) float32.

    Drawn at ``base`` pixels and upsampled (a 1/f spectrum looks alike at every scale)."""
    n = base
    fy = np.fft.fftfreq(n)[:, None]
    fx = np.fft.rfftfreq(n)[None, :]
    radius = np.sqrt(fx * fx + fy * fy)
    radius[0, 0] = 1.0
    spectrum = (
        rng.standard_normal((n, n // 2 + 1)) + 1j * rng.standard_normal((n, n // 2 + 1))
    ) / radius ** (beta / 2)
    spectrum[0, 0] = 0.0
    field = np.fft.irfft2(spectrum, s=(n, n)).astype(np.float32)
    field = (field - field.mean()) / (field.std() + 1e-6)
    image = Image.fromarray(field, "F").resize((max(width, 1), max(height, 1)), Image.BILINEAR)
    return np.asarray(image, dtype=np.float32)


def tint(grey: np.ndarray, colour: np.ndarray, contrast: float = 0.6) -> np.ndarray:
    """A grey texture (0-1, or zero-mean noise) carried by a colour:
    ``colour * (1 + contrast*(g - mean))``."""
    g = grey - np.float32(grey.mean())
    g *= np.float32(contrast / (max(float(g.max()), -float(g.min())) + 1e-6))
    g += np.float32(1.0)
    out = g[:, :, None] * np.asarray(colour, dtype=np.float32)[None, None, :]
    return np.clip(out, 0, 1, out=out)


def colour_shift(rng: np.random.Generator, rgb: np.ndarray, strength: float = 0.25) -> np.ndarray:
    """A random white balance, saturation and brightness change (the same photo in another light)."""
    grey = luminance(rgb)[:, :, None]
    saturation = rng.uniform(1 - strength * 2, 1 + strength)
    gains = rng.uniform(1 - strength, 1 + strength, 3).astype(np.float32)
    brightness = rng.uniform(1 - strength, 1 + strength * 0.6)
    out = (grey + saturation * (rgb - grey)) * gains[None, None, :] * brightness
    return np.clip(out, 0, 1).astype(np.float32)


def surface(rng: np.random.Generator, kind: str, width: int, height: int, colour: np.ndarray) -> np.ndarray:
    """A tinted surface: a shipped grey photo (``brick.png`` ...) or ``noise`` (1/f), ``wood``, ``fabric``."""
    if kind == "noise":
        grey = pink_noise(rng, width, height) * 0.5 + 0.15 * rng.standard_normal(
            (height, width), dtype=np.float32
        )
        return tint(grey, colour, contrast=rng.uniform(0.15, 0.35))
    if kind == "wood":
        y = np.arange(height, dtype=np.float32)[:, None]
        warp = pink_noise(rng, width, height, base=24) * rng.uniform(2, 6)
        period = rng.uniform(3, 9)
        grain = np.sin((y + warp) * (2 * np.pi / period)) + 0.4 * pink_noise(rng, width, height)
        return tint(grey=grain, colour=colour, contrast=0.3)
    if kind == "fabric":
        weave = pink_noise(rng, width, height, beta=1.4) + 0.6 * rng.standard_normal(
            (height, width), dtype=np.float32
        )
        return tint(weave, colour, contrast=0.25)
    grey = luminance(crop(rng, kind, width, height, 0.2, 0.8))
    return tint(grey, colour, contrast=rng.uniform(0.5, 0.9))
