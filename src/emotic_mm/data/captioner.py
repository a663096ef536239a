"""Describe persons with any transformers image-to-text model (BLIP, GIT, ...), in batches.

The model sees pixels only: either the person's crop or the whole image with the box drawn on it
(``text.view``). Labels never reach it. :class:`CaptionDescriber` is the ``text=captioner`` source.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from PIL import Image, ImageDraw

from emotic_mm.data.descriptions import SOURCE_CAPTIONER, Descriptions, PersonMeta
from emotic_mm.data.images import ImageDecodeError, open_rgb
from emotic_mm.errors import ConfigError, DataFormatError
from emotic_mm.progress import progress_bar

VIEWS = ("crop", "box")


def person_image(image: Image.Image, meta: PersonMeta, view: str) -> Image.Image:
    """What the captioner looks at for one person."""
    if view == "crop":
        x1, y1, x2, y2 = meta.box
        return image.crop((x1, y1, max(x2, x1 + 1), max(y2, y1 + 1)))
    if view == "box":
        drawn = image.copy()
        width = max(2, min(image.width, image.height) // 100)
        ImageDraw.Draw(drawn).rectangle(meta.box, outline=(255, 0, 0), width=width)
        return drawn
    raise ConfigError(f"text.view={view!r} is not one of {', '.join(VIEWS)}")


def _batches(metas: Sequence[PersonMeta], size: int) -> Iterator[Sequence[PersonMeta]]:
    for start in range(0, len(metas), size):
        yield metas[start:start + size]


class Captioner:
    """An image-to-text model loaded once; ``captioner(metas)`` gives one caption per person, batched.
    ``text_cfg`` is the ``text`` block (a mapping: ``model`` and the optional keys of captioner.yaml)."""

    def __init__(self, text_cfg: Any, images_dir: Path) -> None:
        from transformers import AutoModelForImageTextToText, AutoProcessor

        from emotic_mm.pretrained import load_pretrained

        name = str(text_cfg["model"])
        self.view = str(text_cfg.get("view", "crop"))
        if self.view not in VIEWS:
            raise ConfigError(f"text.view={self.view!r} is not one of {', '.join(VIEWS)}")
        self.processor = load_pretrained(AutoProcessor, name, "text.model", "an image-to-text processor")
        self.model = load_pretrained(AutoModelForImageTextToText, name, "text.model",
                                     "an image-to-text model")
        self.device = _device(str(text_cfg.get("device", "auto")))
        self.model.to(self.device).eval()
        self.prompt = text_cfg.get("prompt")
        self.batch_size = int(text_cfg.get("batch_size", 16))
        self.max_new_tokens = int(text_cfg.get("max_new_tokens", 30))
        self.images_dir = Path(images_dir)

    def __call__(self, metas: Sequence[PersonMeta]) -> list[str]:
        import torch

        captions: list[str] = []
        cache: tuple[Path, Image.Image] | None = None  # persons of one image are consecutive
        with progress_bar("captioning", total=len(metas), unit="persons") as advance, torch.inference_mode():
            for batch in _batches(metas, self.batch_size):
                views = []
                for meta in batch:
                    path = self.images_dir / meta.folder / meta.filename
                    if cache is None or cache[0] != path:
                        try:
                            cache = (path, open_rgb(path))
                        except (FileNotFoundError, ImageDecodeError) as exc:
                            raise DataFormatError(f"{path}: cannot read for captioning ({exc})") from None
                    views.append(person_image(cache[1], meta, self.view))
                kwargs = {"images": views, "return_tensors": "pt"}
                if self.prompt:
                    kwargs["text"] = [str(self.prompt)] * len(views)
                inputs = self.processor(**kwargs).to(self.device)
                out = self.model.generate(**inputs, max_new_tokens=self.max_new_tokens)
                captions.extend(t.strip() for t in self.processor.batch_decode(out, skip_special_tokens=True))
                advance(len(batch))
        return captions


class CaptionDescriber:
    """``text=captioner``: one caption per person from a :class:`Captioner`, loaded once."""

    def __init__(self, model: str, images_dir: Path, view: str = "crop", prompt: str | None = None,
                 batch_size: int = 16, max_new_tokens: int = 30, device: str = "auto",
                 source: str = SOURCE_CAPTIONER, path: Any = None) -> None:
        # path: data=synthetic sets text.path for whichever source is chosen; a captioner reads none
        self.captioner = Captioner({"model": model, "view": view, "prompt": prompt, "batch_size": batch_size,
                                    "max_new_tokens": max_new_tokens, "device": device}, images_dir)

    def __call__(self, metas: Sequence[PersonMeta]) -> Descriptions:
        texts = self.captioner(metas)
        return Descriptions(texts, [SOURCE_CAPTIONER] * len(texts), {SOURCE_CAPTIONER: len(texts)})


def _device(name: str) -> str:
    import torch

    if name != "auto":
        return name
    if torch.cuda.is_available():
        return "cuda"
    if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
        return "mps"
    return "cpu"
