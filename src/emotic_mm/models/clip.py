"""``model=clip``: a pretrained vision–language space (transformers ``CLIPModel`` or ``SiglipModel``) as
the joint embedding.

The context and body views go through the one vision tower, the description through the text tower;
the 26 categories are prompts (``prompt``: ``{name}``, ``{definition}``) embedded by the same text tower,
with learnable offsets (zero at start, as in ``model=joint``), and are scored by similarity to the fused
vector. At initialisation the scores are the tower's zero-shot scores, so ``emotic-mm eval model=clip
checkpoint=null`` is a zero-shot evaluation and ``finetune=probe`` starts from it.

Inputs stay raw pixels (B, 3, H, W) in 0–255: the processor's resize and normalisation happen inside the
model, so attacks, defenses and ``predict`` see the same pixel-space contract as the other variants.

``finetune``: ``probe`` (both towers frozen, their outputs memoised; the offsets, scale, bias, fusion and
VAD head learn), ``partial`` (the last ``trainable_blocks`` blocks of each tower and the projections
learn), ``full`` (everything learns).

Text pooling is the tower's own: CLIP pools the hidden state at the configured ``eos_token_id`` (the
first occurrence), SigLIP the last position (its tokens are padded to a fixed length, as here).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
import torch.nn.functional as F
from torch import nn

from emotic_mm.data.categories import CATEGORIES, NUM_CATEGORIES, PROMPT_TEMPLATE, category_prompt
from emotic_mm.errors import ConfigError
from emotic_mm.models.memo import FeatureMemo
from emotic_mm.models.multimodal import encode_batch

if TYPE_CHECKING:
    from emotic_mm.defenses.contracts import InputDefense

FINETUNE = ("probe", "partial", "full")
FUSION = ("mean", "weighted")
IMAGE_VIEWS = ("context", "body")
MODALITIES = ("context", "body", "text")


def _pooled(output: Any) -> torch.Tensor:
    """``get_*_features`` returns a tensor in older transformers, an output with ``pooler_output`` in
    newer."""
    return output if isinstance(output, torch.Tensor) else output.pooler_output


def processor_geometry(processor: Any) -> tuple[int, list[float], list[float]]:
    """(square input size, mean, std) of a transformers image processor."""
    size = getattr(processor, "crop_size", None) or getattr(processor, "size", None) or {}
    if isinstance(size, int):
        side = size
    else:  # a dict, or transformers' SizeDict
        get = size.get if hasattr(size, "get") else (lambda k: getattr(size, k, None))
        side = get("height") or get("shortest_edge")
    if not side:
        raise ConfigError(f"model.clip.name: the image processor names no input size ({size!r})")
    return int(side), list(processor.image_mean), list(processor.image_std)


class ClipView:
    """One image stream's view of the shared vision tower, shaped like :class:`ImageEncoder` for the code
    that reads ``model.image_encoders`` (attacks at the model's resolution, the backdoor's trigger cell,
    collision fine-tuning). Not a module: both views share the tower's parameters."""

    def __init__(self, owner: "ClipModel", view: str) -> None:
        self.owner, self.view = owner, view

    @property
    def input_size(self) -> int:
        return self.owner.image_size

    @property
    def backbone(self) -> nn.Module:
        return self.owner.vision_model

    @property
    def frozen(self) -> bool:
        return self.owner.vision_frozen

    @frozen.setter
    def frozen(self, value: bool) -> None:
        self.owner.vision_frozen = bool(value)

    def working_view(self, pixels: torch.Tensor) -> torch.Tensor:
        return self.owner.working_view(pixels)

    def __call__(self, pixels: torch.Tensor) -> torch.Tensor:
        return self.owner.image_features(pixels)


class ClipText:
    """The text tower as ``warm_text_features`` sees an encoder: ``frozen`` and ``warm``."""

    def __init__(self, owner: "ClipModel") -> None:
        self.owner = owner

    @property
    def frozen(self) -> bool:
        return self.owner.text_frozen

    def __call__(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        return self.owner.text_features(input_ids, attention_mask)

    @torch.no_grad()
    def warm(self, input_ids: torch.Tensor, attention_mask: torch.Tensor, batch_size: int = 128) -> None:
        if not self.frozen:
            return
        device = self.owner.category_scale.device
        for start in range(0, input_ids.shape[0], batch_size):
            self.owner.text_features(
                input_ids[start : start + batch_size].to(device),
                attention_mask[start : start + batch_size].to(device),
            )


class ClipModel(nn.Module):
    """Context, body, description and the 26 category prompts in a pretrained CLIP/SigLIP space."""

    variant = "clip"
    zero_shot = True  # scores without training: eval accepts checkpoint=null

    def __init__(
        self,
        towers: nn.Module,
        processor: Any,
        tokenizer: Any,
        modalities: Sequence[str],
        finetune: str = "probe",
        trainable_blocks: int = 2,
        prompt: str = PROMPT_TEMPLATE,
        fusion: str = "mean",
        category_offsets: bool = True,
        memo_size: int = 200_000,
    ) -> None:
        super().__init__()
        if finetune not in FINETUNE:
            raise ConfigError(f"model.clip.finetune={finetune!r} is not one of {', '.join(FINETUNE)}")
        if fusion not in FUSION:
            raise ConfigError(f"model.fusion={fusion!r} is not one of {', '.join(FUSION)}")
        if not hasattr(towers, "get_image_features") or not hasattr(towers, "get_text_features"):
            raise ConfigError(
                f"model.clip.name: {type(towers).__name__} is not a CLIP-style model "
                "(it needs get_image_features and get_text_features)"
            )
        self.modalities = tuple(m for m in MODALITIES if m in modalities)
        self.clip = towers
        self.finetune, self.fusion = finetune, fusion
        self.image_size, mean, std = processor_geometry(processor)
        self.register_buffer("mean", torch.tensor(mean).view(1, 3, 1, 1) * 255.0, persistent=False)
        self.register_buffer("std", torch.tensor(std).view(1, 3, 1, 1) * 255.0, persistent=False)
        dim = (
            int(towers.config.projection_dim)
            if hasattr(towers.config, "projection_dim")
            else int(towers.config.text_config.hidden_size)
        )
        self.embed_dim = dim
        prompts = tokenizer(
            [category_prompt(c, prompt) for c in CATEGORIES],
            padding="max_length",
            truncation=True,
            max_length=self.text_positions(),
            return_tensors="pt",
        )
        self.register_buffer("category_ids", prompts["input_ids"], persistent=False)
        self.register_buffer("category_mask", prompts["attention_mask"], persistent=False)
        # scores start as the tower's own zero-shot similarities (its learned temperature)
        scale = (
            float(towers.logit_scale.detach().exp().clamp(max=100.0).reshape(-1)[0])
            if hasattr(towers, "logit_scale")
            else 10.0
        )
        self.category_scale = nn.Parameter(torch.tensor(scale).log())
        self.category_bias = nn.Parameter(torch.zeros(NUM_CATEGORIES))
        self.category_offsets = nn.Parameter(torch.zeros(NUM_CATEGORIES, dim), requires_grad=category_offsets)
        self.modality_weights = nn.Parameter(
            torch.zeros(len(self.modalities)), requires_grad=fusion == "weighted"
        )
        self.vad_head = nn.Sequential(nn.Linear(dim, dim), nn.GELU(), nn.Linear(dim, 3))
        nn.init.constant_(self.vad_head[-1].bias, 5.5)
        self.vision_frozen = self.text_frozen = finetune == "probe"
        self._set_trainable(finetune, int(trainable_blocks))
        self.image_memo, self.text_memo = FeatureMemo(memo_size), FeatureMemo(memo_size)
        self.image_encoders = {v: ClipView(self, v) for v in IMAGE_VIEWS if v in self.modalities}
        self.text_encoder = ClipText(self)
        self.input_defense: InputDefense | None = None

    def attach_defense(self, defense: InputDefense) -> None:
        """An input defense on the picture the vision tower sees (after the resize, before normalisation).
        Only pixel filters: the vision tower always reads normalised 3-channel pictures."""
        if defense.out_channels != 3:
            raise ConfigError(
                f"defense={defense.name} is not available for model=clip (its patch embedding "
                f"would need widening to the {defense.out_channels} channels of the defense's "
                "view); use model=baseline or joint"
            )
        self.input_defense = defense

    # ------------------------------------------------------------------ set-up
    @property
    def vision_model(self) -> nn.Module:
        return self.clip.vision_model

    def text_positions(self) -> int:
        return int(self.clip.config.text_config.max_position_embeddings)

    def _set_trainable(self, finetune: str, blocks: int) -> None:
        self.clip.requires_grad_(finetune == "full")
        if finetune == "partial":
            if blocks < 0:
                raise ConfigError(f"model.clip.trainable_blocks={blocks} must be >= 0")
            for tower in (self.clip.vision_model, self.clip.text_model):
                layers = tower.encoder.layers
                for layer in list(layers)[len(layers) - min(blocks, len(layers)) :]:
                    layer.requires_grad_(True)
            for name, module in self.clip.named_children():
                if "projection" in name or name in ("logit_scale", "logit_bias") or "head" in name:
                    module.requires_grad_(True)
            for tower in (self.clip.vision_model, self.clip.text_model):
                for name, module in tower.named_children():
                    if "layernorm" in name.lower() or "layer_norm" in name.lower() or name == "head":
                        module.requires_grad_(True)

    def omitted_prefixes(self) -> list[str]:
        """Frozen towers are rebuilt from their pretrained name, not stored in every checkpoint."""
        return ["clip."] if self.finetune == "probe" else []

    def train(self, mode: bool = True) -> "ClipModel":
        super().train(mode)
        if self.finetune == "probe":
            self.clip.eval()
        return self

    # ------------------------------------------------------------------ towers
    def working_view(self, pixels: torch.Tensor) -> torch.Tensor:
        """The picture the vision tower looks at: float pixels in [0, 255] at the processor's size."""
        x = pixels.float()
        if x.shape[-1] != self.image_size or x.shape[-2] != self.image_size:
            x = F.interpolate(
                x,
                size=(self.image_size, self.image_size),
                mode="bicubic",
                align_corners=False,
                antialias=True,
            ).clamp(0, 255)
        return x

    def _encode_images(self, pixels: torch.Tensor) -> torch.Tensor:
        x = self.working_view(pixels)
        if self.input_defense is not None:
            x = self.input_defense(x)
        x = (x - self.mean) / self.std
        return _pooled(self.clip.get_image_features(pixel_values=x))

    def image_features(self, pixels: torch.Tensor) -> torch.Tensor:
        """Projected image features (B, D); memoised by content when the tower is frozen, the model is
        evaluating (augmented training pictures never repeat, so hashing them would only evict the val
        pictures that do) and no gradient to the pixels is asked for (feature collision needs it)."""
        if not self.vision_frozen or self.training or pixels.requires_grad or self.image_memo.size <= 0:
            return self._encode_images(pixels)
        keys = FeatureMemo.keys_of(pixels)
        return self.image_memo(keys, lambda rows: self._encode_images(pixels[rows]), pixels.device)

    def _encode_text(self, ids: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        return _pooled(self.clip.get_text_features(input_ids=ids, attention_mask=mask))

    def text_features(self, ids: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        if not self.text_frozen or self.text_memo.size <= 0:
            return self._encode_text(ids, mask)
        keys = FeatureMemo.keys_of(ids * mask)
        return self.text_memo(keys, lambda rows: self._encode_text(ids[rows], mask[rows]), ids.device)

    def encode(
        self, batch: dict[str, torch.Tensor], only: Sequence[str] | None = None
    ) -> dict[str, torch.Tensor]:
        """Tower features per modality (``features.<modality>`` in the batch skips that tower)."""
        return encode_batch(self, batch, only)

    # ------------------------------------------------------------------ heads
    def category_vectors(self) -> tuple[torch.Tensor, torch.Tensor]:
        """(26, D) unit prompt vectors: alone (zero-shot) and with the learned offsets (scoring)."""
        names = self.text_features(self.category_ids, self.category_mask)
        return F.normalize(names, dim=-1), F.normalize(names + self.category_offsets, dim=-1)

    def _fuse(self, embeddings: dict[str, torch.Tensor]) -> torch.Tensor:
        present = [m for m in self.modalities if m in embeddings]
        weights = torch.softmax(self.modality_weights, 0) * len(self.modalities)
        return torch.stack([weights[self.modalities.index(m)] * embeddings[m] for m in present]).sum(0)

    def forward(self, batch: dict[str, torch.Tensor]) -> dict[str, Any]:
        feats = self.encode(batch)
        embeddings = {m: F.normalize(f.float(), dim=-1) for m, f in feats.items()}
        out: dict[str, Any] = {"embeddings": embeddings}
        images = [embeddings[m] for m in IMAGE_VIEWS if m in embeddings]
        if images:
            out["image_embedding"] = F.normalize(torch.stack(images).sum(0), dim=-1)
        if "text" in embeddings:
            out["text_embedding"] = embeddings["text"]
        evidence = self._fuse(embeddings)  # sum of (weighted) unit vectors: each modality adds its evidence
        fused = F.normalize(evidence, dim=-1)
        out["fused_embedding"] = fused
        names, categories = self.category_vectors()
        out["zero_shot"] = fused @ names.t()
        out["logits"] = self.category_scale.exp() * (evidence @ categories.t()) + self.category_bias
        out["vad"] = self.vad_head(fused)
        scale = getattr(self.clip, "logit_scale", None)
        out["logit_scale"] = (
            scale.clamp(max=math.log(100.0)).exp().reshape(())
            if scale is not None
            else self.category_scale.exp()
        )
        return out

    def image_representation(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        """The image vector of the shared space (``image_embedding`` of :meth:`forward`)."""
        feats = self.encode(batch, only=IMAGE_VIEWS)
        return F.normalize(
            torch.stack([F.normalize(f.float(), dim=-1) for f in feats.values()]).sum(0), dim=-1
        )


def load_towers(name: str) -> tuple[nn.Module, Any, Any]:
    """(model, image processor, tokenizer) of a CLIP/SigLIP hub id or local folder, offline-safe; a folder
    whose parts cannot work together is one line naming the folder and the key (:func:`check_towers`)."""
    from transformers import AutoImageProcessor, AutoModel, AutoTokenizer
    from transformers.utils import logging as hf_logging

    from emotic_mm.config import resolve_model_name
    from emotic_mm.pretrained import load_pretrained

    hf_logging.disable_progress_bar()
    key, path = "model.clip.name", resolve_model_name(str(name))
    if Path(path).is_dir() and not (Path(path) / "preprocessor_config.json").is_file():
        raise ConfigError(
            f"{key}={name!r}: {path} has no preprocessor_config.json (the image processor); "
            "save the processor beside the model"
        )
    towers = load_pretrained(AutoModel, name, key, "a CLIP/SigLIP model")
    processor = load_pretrained(AutoImageProcessor, name, key, "an image processor")
    tokenizer = load_pretrained(AutoTokenizer, name, key, "a tokenizer")
    check_towers(path, towers, tokenizer)
    return towers, processor, tokenizer


def check_towers(folder: str, towers: nn.Module, tokenizer: Any) -> None:
    """What a folder declares that cannot work: a text tower without a ``text_config``, or a tokenizer
    whose ids run past the text tower's embedding table (an IndexError at the first description)."""
    text = getattr(towers.config, "text_config", None)
    if text is None:
        raise ConfigError(
            f"{folder}: config.json has no text_config (not a CLIP-style model with a text tower)"
        )
    vocab = int(getattr(text, "vocab_size", 0) or 0)
    if len(tokenizer) > vocab:
        raise ConfigError(
            f"{folder}: the tokenizer has {len(tokenizer)} tokens but "
            f"text_config.vocab_size={vocab}; ids beyond the embedding table cannot be "
            "embedded"
        )


def build(
    modalities: Sequence[str],
    clip: dict[str, Any],
    prompt: str = PROMPT_TEMPLATE,
    fusion: str = "mean",
    category_offsets: bool = True,
    memo_size: int = 200_000,
    tokenizer: dict[str, Any] | None = None,
    name: str = "clip",
) -> ClipModel:
    """The ``model=clip`` builder (``configs/model/clip.yaml``)."""
    towers, processor, tok = load_towers(clip["name"])
    return ClipModel(
        towers,
        processor,
        tok,
        list(modalities),
        finetune=str(clip.get("finetune", "probe")),
        trainable_blocks=int(clip.get("trainable_blocks", 2)),
        prompt=str(prompt),
        fusion=str(fusion),
        category_offsets=bool(category_offsets),
        memo_size=int(memo_size),
    )
