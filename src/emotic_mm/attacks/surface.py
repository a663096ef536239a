"""The one view-edit primitive: paint pixels on a surface of a batch, as if the photo had been edited.

Every attack that changes pixels goes through here — the evasion engine (per candidate), the backdoor
(its trigger), the attack stage (the adversarial views it saves) — so "which views does a surface
touch" and "how does a context pixel land on the body crop" are answered in one place.

Surfaces:
``context``  the whole-image view;
``body``     the person crop;
``scene``    the context view, and every painted context pixel also over the matching region of the
             body crop, through the person's box (the crop is a resized window of the same photo).

Pixels are ``(..., k, 5)`` integer rows ``(x, y, r, g, b)`` in the grid of the tensor they are painted
on, so the same code paints the stored views (224/128 px) or the pictures the encoders see (e.g. 64 px):
the context→body map is computed from the sizes of the tensors at hand.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from emotic_mm.errors import ConfigError

SURFACES = ("context", "body", "scene")


def painted_view(surface: str) -> str:
    """The view a surface's pixel coordinates live in (``scene`` → ``context``)."""
    return "context" if surface == "scene" else surface


def touched_views(surface: str) -> set[str]:
    """Every view a surface's edits change (``scene`` changes the body crop too)."""
    return {"context", "body"} if surface == "scene" else {surface}


def check_surface(surface: str, modalities: Sequence[str] | None = None, key: str = "attack.surface") -> str:
    """Validate ``surface`` (and, given a model's ``modalities``, that it has the stream); returns it."""
    if surface not in SURFACES:
        raise ConfigError(f"{key}={surface!r} is not one of {', '.join(SURFACES)}")
    if modalities is not None and painted_view(surface) not in modalities:
        raise ConfigError(
            f"{key}={surface!r}: the model has no {painted_view(surface)!r} stream "
            f"(modalities {list(modalities)})"
        )
    return surface


def context_to_body_affine(
    boxes: torch.Tensor, image_sizes: torch.Tensor, context_size: int, body_size: int
) -> torch.Tensor:
    """Affine map context-view pixel → body-crop pixels: (N, 4) = (sx, ox, sy, oy) with
    body_x = (ctx_x * W / C - x1) * B / (x2 - x1), likewise for y (W, H: the photo's size)."""
    x1, y1, x2, y2 = boxes.float().unbind(-1)
    w, h = image_sizes.float().unbind(-1)
    sx = (w / context_size) * body_size / (x2 - x1).clamp_min(1)
    sy = (h / context_size) * body_size / (y2 - y1).clamp_min(1)
    ox = -x1 * body_size / (x2 - x1).clamp_min(1)
    oy = -y1 * body_size / (y2 - y1).clamp_min(1)
    return torch.stack([sx, ox, sy, oy], dim=-1)


def paint(images: torch.Tensor, pixels: torch.Tensor) -> torch.Tensor:
    """Write k pixels per image in place: images (B, 3, H, W), pixels (B, k, 5) long (x, y, r, g, b)."""
    b = torch.arange(images.shape[0], device=images.device)[:, None].expand(-1, pixels.shape[1])
    images[b, :, pixels[..., 1], pixels[..., 0]] = pixels[..., 2:5].to(images.dtype)
    return images


def paint_through_box(bodies: torch.Tensor, pixels: torch.Tensor, affine: torch.Tensor) -> torch.Tensor:
    """Paint each context pixel's footprint onto the body crop in place (rectangles via masks)."""
    size_y, size_x = bodies.shape[-2:]
    gx = torch.arange(size_x, device=bodies.device, dtype=torch.float32)
    gy = torch.arange(size_y, device=bodies.device, dtype=torch.float32)
    sx, ox, sy, oy = (affine[:, i : i + 1] for i in range(4))  # (B, 1)
    for j in range(pixels.shape[1]):  # k is a handful of pixels; images and candidates stay batched
        x = pixels[:, j, 0:1].float()
        y = pixels[:, j, 1:2].float()
        bx0, bx1 = torch.floor(x * sx + ox), torch.ceil((x + 1) * sx + ox)
        by0, by1 = torch.floor(y * sy + oy), torch.ceil((y + 1) * sy + oy)
        in_x = (gx[None, :] >= bx0) & (gx[None, :] < bx1)  # (B, W)
        in_y = (gy[None, :] >= by0) & (gy[None, :] < by1)  # (B, H)
        mask = (in_y[:, :, None] & in_x[:, None, :])[:, None]  # (B, 1, H, W)
        colour = pixels[:, j, 2:5].to(bodies.dtype)[:, :, None, None]
        bodies.copy_(torch.where(mask, colour, bodies))
    return bodies


def scene_affine(
    batch: dict[str, torch.Tensor], boxes: torch.Tensor | None, image_sizes: torch.Tensor | None
) -> torch.Tensor | None:
    """The context→body map of ``batch``'s views, or ``None`` when the batch has no body crop."""
    if "body" not in batch or "context" not in batch:
        return None
    if boxes is None or image_sizes is None:
        raise ConfigError("the scene surface needs the store's boxes and image sizes (re-run prepare)")
    return context_to_body_affine(boxes, image_sizes, batch["context"].shape[-1], batch["body"].shape[-1])


def paint_surface(
    batch: dict[str, torch.Tensor],
    pixels: torch.Tensor,
    surface: str,
    affine: torch.Tensor | None = None,
    in_place: bool = False,
) -> dict[str, torch.Tensor]:
    """``batch`` with ``pixels`` (B, k, 5) painted on ``surface``; other keys are passed through.

    ``affine`` (B, 4) from :func:`scene_affine` is needed for ``scene`` when the batch has a body crop.
    Views are copied first unless ``in_place`` (the engine paints its own fresh copies).
    """
    out = dict(batch)
    view = painted_view(surface)
    pixels = pixels.to(batch[view].device)
    out[view] = paint(batch[view] if in_place else batch[view].clone(), pixels)
    if surface == "scene" and "body" in batch:
        if affine is None:
            raise ConfigError("the scene surface needs the store's boxes and image sizes (re-run prepare)")
        body = batch["body"] if in_place else batch["body"].clone()
        out["body"] = paint_through_box(body, pixels, affine.to(body.device))
    return out
