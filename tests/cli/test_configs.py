"""Every config file composes, and the model configs build (offline, no weights)."""

from __future__ import annotations

from pathlib import Path

import pytest
from omegaconf import OmegaConf

from emotic_mm.config import configs_dir
from support import TINY_MODEL, compose_cfg

CONFIGS = configs_dir()


@pytest.mark.parametrize(
    "overrides",
    [
        [],
        ["data=emotic", "data.raw_dir=/x"],
        ["text=captioner"],
        ["text=template"],
        ["data=emotic", "text=file", "text.path=a.csv"],
    ],
)
def test_prepare_configs_compose(overrides):
    cfg = compose_cfg("prepare", overrides)
    assert cfg.data.prepared_dir and cfg.tokenizer.name


@pytest.mark.parametrize("data,release", [("synthetic", "SyntheticRelease"), ("emotic", "EmoticRelease")])
def test_data_configs_build_their_release(data, release, tmp_path):
    """data._target_ names the release; seed and name as the run and the manifest record them."""
    from emotic_mm.data.releases import make_release
    from emotic_mm.errors import ConfigError

    seed = ["data.synthetic.seed=3"] if data == "synthetic" else []
    cfg = compose_cfg("prepare", [f"data={data}", *seed])
    made = make_release(cfg.data)
    assert type(made).__name__ == release and made.name == data
    assert made.seed == (3 if data == "synthetic" else None)
    if data == "emotic":  # raw_dir: ??? — one line naming the key, as before data blocks had a _target_
        with pytest.raises(ConfigError, match=r"^data.raw_dir is not set: pass data.raw_dir=/path/to/emotic"):
            made.check(tmp_path / "store")
    else:
        made.check(tmp_path / "store")
        assert made.manifest()["synthetic"]["seed"] == 3
    legacy = {k: v for k, v in OmegaConf.to_container(cfg.data, resolve=True).items() if k != "_target_"}
    assert type(make_release(legacy)).__name__ == release  # a block without _target_: chosen by its name


@pytest.mark.parametrize("text", ["template", "file", "captioner"])
def test_text_configs_name_their_source(text):
    from hydra.utils import get_class

    cfg = compose_cfg("prepare", ["data=emotic", "data.raw_dir=/x", f"text={text}"])
    source = get_class(cfg.text._target_)
    assert cfg.text.source == text and callable(source)


@pytest.mark.parametrize(
    "group_file", sorted(p.relative_to(CONFIGS) for p in (CONFIGS / "model").glob("*.yaml"))
)
def test_every_model_config_builds(group_file: Path, clip_towers):
    from emotic_mm.models.factory import build_model

    # offline: CLIP builds from the tiny local folder instead of its hub id
    extra = [f"model.clip.name={clip_towers['clip']}"] if group_file.stem == "clip" else TINY_MODEL
    cfg = compose_cfg("train", [f"model={group_file.stem}", *extra])
    model = build_model(cfg.model)
    assert model.variant == group_file.stem


@pytest.mark.parametrize("experiment", sorted(p.stem for p in (CONFIGS / "experiment").glob("*.yaml")))
def test_experiment_presets_compose(experiment: str):
    stage = "attack" if experiment == "robustness_study" else "train"  # the study is a sweep of attacks
    cfg = compose_cfg(stage, [f"experiment={experiment}"])
    assert cfg.trainer.epochs > 0


def test_eval_config_composes():
    cfg = compose_cfg("eval", ["checkpoint=/some/run/best"])
    assert cfg.split == "test" and cfg.data.prepared_dir


@pytest.mark.slow  # cost (~13 s): composes every study case
def test_robustness_study_presets_sweep_existing_cases():
    for preset in ("full", "quick", "poisoning", "defenses"):
        cfg = compose_cfg("attack", ["experiment=robustness_study", f"study={preset}"], hydra=True)
        params = cfg.hydra.sweeper.params
        assert set(params.model.split(",")) == {"baseline", "joint"}
        cases = params.case.split(",")
        assert set(cases) <= {p.stem for p in (CONFIGS / "case").glob("*.yaml")}
        for case in cases:
            composed = compose_cfg(
                "attack", ["experiment=robustness_study", f"study={preset}", f"case={case}"]
            )
            assert (
                composed.trainer.epochs == composed.study_scale.epochs == 8
            )  # the study's clean models: the demo's
            if composed.attack.name == "pixel":
                assert list(composed.attack.pixels) == [1, 3, 10, 30, 100]
                assert (composed.attack.persons, composed.attack.budget, composed.attack.population) == (
                    (40, 100, 10) if preset == "quick" else (200, 1000, 40)
                )
    full = compose_cfg("attack", ["experiment=robustness_study"], hydra=True).hydra.sweeper.params
    assert full.seed == "0,1,2" and full.modality == "image,fused"
    image = compose_cfg("attack", ["experiment=robustness_study", "modality=image", "case=evasion_de"])
    assert list(image.model.modalities) == ["context", "body"] and image.attack.algorithm == "de"
    defended = compose_cfg(
        "attack", ["experiment=robustness_study", "study=defenses"], hydra=True
    ).hydra.sweeper.params
    assert set(defended.defense.split(",")) == {"none", "median", "squeeze"}
    assert defended.modality == "image,fused"  # the image-only models are the ones the attack fools
    backdoor = compose_cfg("attack", ["case=backdoor", "attack.rate=0.01", "attack.pixels=36"])
    assert (
        backdoor.attack.name == "poison_backdoor"
        and backdoor.attack.rate == 0.01
        and backdoor.attack.pixels == 36
    )
