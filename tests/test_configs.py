"""Every config file composes, and the model configs build (offline, no weights)."""

from __future__ import annotations

from pathlib import Path

import pytest

from emotic_mm.config import configs_dir
from support import TINY_MODEL, compose_cfg

CONFIGS = configs_dir()


@pytest.mark.parametrize("overrides", [
    [], ["data=emotic", "data.raw_dir=/x"], ["text=captioner"], ["text=template"], ["data=emotic", "text=file", "text.path=a.csv"],
])
def test_prepare_configs_compose(overrides):
    cfg = compose_cfg("prepare", overrides)
    assert cfg.data.prepared_dir and cfg.tokenizer.name


@pytest.mark.parametrize("group_file", sorted(p.relative_to(CONFIGS) for p in (CONFIGS / "model").glob("*.yaml")))
def test_every_model_config_builds(group_file: Path, clip_towers):
    from emotic_mm.models.factory import build_model

    # offline: CLIP builds from the tiny local folder instead of its hub id
    extra = [f"model.clip.name={clip_towers['clip']}"] if group_file.stem == "clip" else TINY_MODEL
    cfg = compose_cfg("train", [f"model={group_file.stem}", *extra])
    model = build_model(cfg.model)
    assert model.variant == group_file.stem


@pytest.mark.parametrize("experiment", sorted(p.stem for p in (CONFIGS / "experiment").glob("*.yaml")))
def test_experiment_presets_compose(experiment: str):
    cfg = compose_cfg("train", [f"experiment={experiment}"])
    assert cfg.trainer.epochs > 0


def test_eval_config_composes():
    cfg = compose_cfg("eval", ["checkpoint=/some/run/best"])
    assert cfg.split == "test" and cfg.data.prepared_dir


def test_robustness_study_sweeps_existing_cases():
    cfg = compose_cfg("attack", ["experiment=robustness_study"], hydra=True)
    params = cfg.hydra.sweeper.params
    assert set(params.model.split(",")) == {"baseline", "joint"}
    cases = params.study.split(",")
    assert set(cases) == {p.stem for p in (CONFIGS / "study").glob("*.yaml")}
    names = {}
    for case in cases:
        composed = compose_cfg("attack", ["experiment=robustness_study", f"study={case}"])
        assert composed.trainer.epochs == 3
        names[case] = composed.attack.name
    assert names["pixel_k3"] == "pixel" and names["backdoor_r10"] == "poison_backdoor"
    assert names["collision"] == "poison_collision"
    assert compose_cfg("attack", ["study=pixel_k5"]).attack.pixels == 5
    assert compose_cfg("attack", ["study=backdoor_r10"]).attack.rate == 0.1
