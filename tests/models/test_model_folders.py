"""Local model folders that do not fit together: a tokenizer longer than its text tower, a vocabulary
larger than the embedding table, a missing processor. Each works (the first) or is one line."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from emotic_mm.errors import ConfigError
from support.compose import compose_cfg


@pytest.mark.slow  # cost (~14 s): a whole eval
def test_a_clip_tokenizer_longer_than_its_text_tower_is_cut_to_the_tower(tiny_store, tmp_path):
    """A tiny CLIP saved with the shipped MiniLM tokenizer as a new user would (model_max_length 512, 64
    positions): eval model=clip checkpoint=null re-tokenises at 64 instead of failing in the tower."""
    from emotic_mm.stages.evaluate import evaluate
    from support.clip import TEXT, save_tiny

    folder = save_tiny(tmp_path / "clip")
    config = folder / "tokenizer_config.json"
    config.write_text(json.dumps({**json.loads(config.read_text()), "model_max_length": 512}))
    store = Path(shutil.copytree(tiny_store.store, tmp_path / "store"))
    cfg = compose_cfg(
        "eval",
        [
            "model=clip",
            "checkpoint=null",
            f"model.clip.name={folder}",
            f"data.prepared_dir={store}",
            "device=cpu",
            "model.memo_size=0",
        ],
    )
    metrics = evaluate(cfg, run_dir=tmp_path / "run")
    assert metrics["zero_shot"] and 0 <= metrics["map"] <= 1
    (made,) = (store / "tokens").iterdir()
    assert json.loads((made / "tokens.json").read_text())["max_length"] == TEXT["max_position_embeddings"]
    longer = compose_cfg(
        "eval",
        [
            "model=clip",
            "checkpoint=null",
            f"model.clip.name={folder}",
            "device=cpu",
            f"data.prepared_dir={store}",
            "model.tokenizer.max_length=100",
        ],
    )
    with pytest.raises(
        ConfigError,
        match="model.tokenizer.max_length=100 exceeds the text tower's max_position_embeddings=64",
    ):
        evaluate(longer, run_dir=tmp_path / "run2")


def test_a_vocabulary_larger_than_the_embedding_table_is_one_line(tmp_path):
    from transformers import CLIPConfig, CLIPImageProcessor, CLIPModel

    from emotic_mm.data.tokens import load_tokenizer
    from emotic_mm.models.clip import load_towers
    from support.clip import TEXT, VISION

    folder = tmp_path / "small_vocab"
    tokenizer = load_tokenizer("shipped:all-MiniLM-L6-v2")
    CLIPModel(
        CLIPConfig(text_config={**TEXT, "vocab_size": 1000}, vision_config=VISION, projection_dim=16)
    ).save_pretrained(folder)
    processor = CLIPImageProcessor(size={"shortest_edge": 32}, crop_size={"height": 32, "width": 32})
    processor.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    with pytest.raises(
        ConfigError,
        match=f"{folder}: the tokenizer has {len(tokenizer)} tokens but text_config.vocab_size=1000",
    ):
        load_towers(str(folder))


def test_a_clip_folder_without_its_processor_is_one_line(clip_towers, tmp_path):
    from emotic_mm.models.clip import load_towers

    folder = Path(shutil.copytree(clip_towers["clip"], tmp_path / "clip"))
    (folder / "preprocessor_config.json").unlink()
    with pytest.raises(
        ConfigError, match=f"model.clip.name='{folder}': {folder} has no preprocessor_config.json"
    ):
        load_towers(str(folder))
