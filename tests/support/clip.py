"""Tiny random CLIP and SigLIP models saved as complete local folders (model + processor + tokenizer).

No CLIP tokenizer files are on the machine, but a real vocabulary is: the shipped MiniLM tokenizer. A
text tower sized to its vocabulary, with its [CLS]/[SEP]/[PAD] ids as bos/eos/pad, saved beside a
CLIP (or SigLIP) image processor, is a folder ``from_pretrained`` loads like a hub model.
"""

from __future__ import annotations

from pathlib import Path

TEXT = {"hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 2, "num_attention_heads": 2,
        "max_position_embeddings": 64}
VISION = {"hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 2, "num_attention_heads": 2,
          "image_size": 32, "patch_size": 8}


def save_tiny(folder: Path, kind: str = "clip", seed: int = 0) -> Path:
    """Write a tiny random ``kind`` ("clip" or "siglip") into ``folder``; returns the folder."""
    import torch
    from transformers import (CLIPConfig, CLIPImageProcessor, CLIPModel, SiglipConfig, SiglipImageProcessor,
                              SiglipModel)

    from emotic_mm.data.tokens import load_tokenizer

    tokenizer = load_tokenizer("shipped:all-MiniLM-L6-v2")
    tokenizer.model_max_length = TEXT["max_position_embeddings"]  # ids never outrun the position table
    ids = {"vocab_size": len(tokenizer), "bos_token_id": tokenizer.cls_token_id,
           "eos_token_id": tokenizer.sep_token_id, "pad_token_id": tokenizer.pad_token_id}
    torch.manual_seed(seed)
    if kind == "clip":
        config = CLIPConfig(text_config={**TEXT, **ids}, vision_config=VISION, projection_dim=16)
        model = CLIPModel(config)
        processor = CLIPImageProcessor(size={"shortest_edge": 32}, crop_size={"height": 32, "width": 32})
    elif kind == "siglip":
        config = SiglipConfig(text_config={**TEXT, **ids}, vision_config=VISION)
        model = SiglipModel(config)
        processor = SiglipImageProcessor(size={"height": 32, "width": 32})
    else:
        raise ValueError(kind)
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(folder)
    processor.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder
