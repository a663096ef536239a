"""A tiny synthetic release, its store and one-epoch checkpoints, built once per test session.

Shared by test_predict.py and test_scaling.py through a module-level memo (both import this module,
so a session that runs both builds everything once). Images are 48-72 px, encoders look at 32 px.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

_MEMO: dict[str, Any] = {}
TINY_TRAIN = ["trainer.epochs=1", "trainer.batch_size=8", "trainer.workers=0", "trainer.tensorboard=false",
              "model.image_encoder.input_size.context=32", "model.image_encoder.input_size.body=32",
              "loss.discrete=bce"]  # BCE: the one-epoch model already gets a few top-1s right (attack summaries)


@dataclass(frozen=True)
class TinyRun:
    raw: Path  # the release: Annotations/Annotations.mat, emotic/<folder>/<file>, descriptions.jsonl
    store: Path  # prepared with text=file (the synthetic default)
    checkpoint: Path  # baseline, context+body+text, one epoch


def compose(name: str, overrides: list[str]):
    from hydra import compose as hydra_compose
    from hydra import initialize_config_dir

    from emotic_mm.config import configs_dir

    with initialize_config_dir(config_dir=str(configs_dir()), version_base="1.3"):
        return hydra_compose(config_name=name, overrides=overrides)


def tiny_run(tmp_path_factory: Any) -> TinyRun:
    if "run" not in _MEMO:
        from omegaconf import OmegaConf

        from emotic_mm.data.convert import ConvertOptions, convert_release
        from emotic_mm.data.synthetic import SyntheticSpec, generate_raw
        from emotic_mm.stages.train import train

        root = tmp_path_factory.mktemp("tiny_run")
        raw = root / "raw"
        raw.mkdir()
        generate_raw(SyntheticSpec(seed=3, images={"train": 16, "val": 8, "test": 8}, min_side=48, max_side=72,
                                   defects_per_split=0), raw)
        store = root / "store"
        convert_release(ConvertOptions(
            raw_dir=raw, out_dir=store, workers=0, max_length=48, tokenizer_name="shipped:all-MiniLM-L6-v2",
            text_cfg=OmegaConf.create({"source": "file", "path": str(raw / "descriptions.jsonl")})))
        train(compose("train", [f"data.prepared_dir={store}", "model=baseline", *TINY_TRAIN]), run_dir=root / "run")
        _MEMO["run"] = TinyRun(raw, store, root / "run" / "best")
    return _MEMO["run"]


def text_only_checkpoint(tmp_path_factory: Any) -> Path:
    """A checkpoint that reads descriptions only (no pictures)."""
    if "text_only" not in _MEMO:
        from emotic_mm.stages.train import train

        run = tiny_run(tmp_path_factory)
        out = tmp_path_factory.mktemp("tiny_text_only")
        train(compose("train", [f"data.prepared_dir={run.store}", "model=baseline", "model.modalities=[text]",
                                *TINY_TRAIN]), run_dir=out)
        _MEMO["text_only"] = out / "best"
    return _MEMO["text_only"]
