"""Trust boundaries: a release, a model folder and a shared checkpoint are untrusted input. Nothing in
them makes a stage open a file outside the paths the user gave, run code, or ask a question."""

from __future__ import annotations

import json
import logging
import subprocess
from pathlib import Path

import pytest

from emotic_mm.errors import ConfigError, DataFormatError
from support.cli import EMOTIC_MM, REPO, cli_env
from support.releases import Img, make_release, person, vperson
from support.stores import convert


def _one_line_error(proc: subprocess.CompletedProcess, *needles: str) -> str:
    assert proc.returncode == 2, (proc.returncode, proc.stdout[-2000:], proc.stderr[-3000:])
    assert "Traceback" not in proc.stderr, proc.stderr
    lines = [line for line in proc.stderr.splitlines() if "error:" in line]
    assert len(lines) == 1, proc.stderr
    for needle in needles:
        assert needle in lines[0], (needle, lines[0])
    return lines[0]


# =========================================================================== a release's picture paths
def test_picture_paths_leaving_the_release_are_skipped_counted_and_never_opened(tmp_path, caplog):
    """``..`` to /etc, a folder beside the release, an absolute folder and a link out of the release are
    refused before anything is opened; the persons are counted as outside_release, in one warning line."""
    root = tmp_path / "raw"
    beside = Img("intruder.jpg", "../../beside/images", "rgb_jpg", [person([1, 1, 20, 20], ["Fear"])])
    make_release(
        root,
        {
            "train": [
                Img("a.jpg", "mscoco/images", "rgb_jpg", [person([2, 2, 30, 28], ["Peace"])]),
                Img("passwd", "../../../../../../../../etc", "missing", [person([0, 0, 5, 5], ["Anger"])]),
                Img("environ", "/proc/self", "missing", [person([0, 0, 5, 5], ["Anger"])]),
                beside,
                Img(
                    "link.jpg",
                    "mscoco/images",
                    "missing",
                    [person([0, 0, 10, 10], ["Pain"]), person([1, 1, 9, 9], ["Pain"])],
                ),
            ],
            "val": [
                Img("b.jpg", "mscoco/images", "rgb_jpg", [vperson([1, 1, 20, 20], [["Fear"]], (3, 7, 3))])
            ],
            "test": [
                Img("c.png", "ade20k/images", "rgb_png", [vperson([0, 0, 40, 30], [["Pain"]], (2, 6, 2))])
            ],
        },
    )
    assert (tmp_path / "beside" / "images" / "intruder.jpg").is_file()  # the release names a real picture
    link = root / "emotic" / "mscoco" / "images" / "link.jpg"
    link.symlink_to(tmp_path / "beside" / "images" / "intruder.jpg")
    with caplog.at_level(logging.WARNING):
        manifest = convert(root, tmp_path / "store")
    train = manifest["splits"]["train"]
    assert train["kept"] == 1 and train["skipped"]["outside_release"] == 5
    assert train["skipped"]["undecodable_image"] == 0 and train["skipped"]["missing_image"] == 0
    lines = [r.getMessage() for r in caplog.records if "outside data.raw_dir" in r.getMessage()]
    assert len(lines) == 1 and "4 picture(s)" in lines[0], lines
    assert not any("passwd" in r.getMessage() and "undecodable" in r.getMessage() for r in caplog.records)


def test_a_release_that_is_itself_a_link_still_reads_its_own_pictures(tmp_path):
    real = make_release(
        tmp_path / "real",
        {
            "train": [Img("a.jpg", "mscoco/images", "rgb_jpg", [person([2, 2, 30, 28], ["Peace"])])],
            "val": [
                Img("b.jpg", "mscoco/images", "rgb_jpg", [vperson([1, 1, 20, 20], [["Fear"]], (3, 7, 3))])
            ],
            "test": [
                Img("c.png", "ade20k/images", "rgb_png", [vperson([0, 0, 40, 30], [["Pain"]], (2, 6, 2))])
            ],
        },
    )
    (tmp_path / "link").symlink_to(real)
    manifest = convert(tmp_path / "link", tmp_path / "store")
    assert [s["kept"] for s in manifest["splits"].values()] == [1, 1, 1]


# =========================================================================== a model folder with custom code
EVIL_CODE = """import os, pathlib
pathlib.Path(os.environ.get("EVIL_MARKER", "/nonexistent/marker")).write_text("the folder's code ran")
from transformers import PretrainedConfig
class EvilConfig(PretrainedConfig):
    model_type = "evil-model"
"""


def _evil_folder(folder: Path) -> Path:
    """A model folder whose every config maps its classes to evil.py (auto_map), which leaves a marker."""
    folder.mkdir(parents=True)
    auto = {
        "AutoConfig": "evil.EvilConfig",
        "AutoModel": "evil.EvilModel",
        "AutoProcessor": "evil.EvilProc",
        "AutoImageProcessor": "evil.EvilProc",
        "AutoModelForImageTextToText": "evil.EvilModel",
    }
    (folder / "config.json").write_text(json.dumps({"model_type": "evil-model", "auto_map": auto}))
    tokenizer = {"auto_map": {"AutoTokenizer": ["evil.EvilTok", None]}}
    (folder / "tokenizer_config.json").write_text(json.dumps(tokenizer))
    (folder / "preprocessor_config.json").write_text(json.dumps({"auto_map": auto}))
    (folder / "evil.py").write_text(EVIL_CODE)
    return folder


@pytest.mark.slow  # CLI eval
def test_a_model_folder_with_custom_code_is_one_line_no_prompt_no_execution(tiny_store, tmp_path):
    """Answering "y" on stdin used to run the folder's code; now nothing asks and nothing runs."""
    evil = _evil_folder(tmp_path / "evil")
    marker = tmp_path / "PWNED"
    proc = subprocess.run(
        [
            EMOTIC_MM,
            "eval",
            "model=clip",
            "checkpoint=null",
            f"model.clip.name={evil}",
            f"data.prepared_dir={tiny_store.store}",
            f"hydra.run.dir={tmp_path / 'r'}",
        ],
        cwd=str(REPO),
        input="y\ny\ny\n",
        capture_output=True,
        text=True,
        timeout=300,
        env=cli_env({"EVIL_MARKER": str(marker)}),
    )
    _one_line_error(proc, "model.clip.name", "custom Python code", "never runs code")
    assert "[y/N]" not in proc.stdout + proc.stderr
    assert not marker.exists()


def test_every_transformers_loader_refuses_custom_code(tmp_path, monkeypatch):
    from omegaconf import OmegaConf

    from emotic_mm.data.captioner import Captioner
    from emotic_mm.data.tokens import load_tokenizer
    from emotic_mm.models.clip import load_towers
    from emotic_mm.models.encoders import TextEncoder

    evil = _evil_folder(tmp_path / "evil")
    marker = tmp_path / "PWNED"
    monkeypatch.setenv("EVIL_MARKER", str(marker))
    monkeypatch.setattr("builtins.input", lambda *a: pytest.fail("asked a question"))
    for load, key in (
        (lambda: load_tokenizer(str(evil)), "tokenizer.name"),
        (lambda: TextEncoder(str(evil)), "model.text_encoder.name"),
        (lambda: load_towers(str(evil)), "model.clip.name"),
        (lambda: Captioner(OmegaConf.create({"model": str(evil)}), tmp_path), "text.model"),
    ):
        with pytest.raises(ConfigError, match=f"{key}=.*custom Python code"):
            load()
    assert not marker.exists()


# =========================================================================== a shared checkpoint's config
def _shared_copy(checkpoint: Path, dest: Path, edit) -> Path:
    """A copy of ``checkpoint`` whose config.yaml ``edit(cfg)`` changed, as someone might share it."""
    import shutil

    from omegaconf import OmegaConf

    shutil.copytree(checkpoint, dest)
    cfg = OmegaConf.load(dest / "config.yaml")
    edit(cfg)
    (dest / "config.yaml").write_text(OmegaConf.to_yaml(cfg))
    return dest


@pytest.mark.parametrize(
    ("key", "value", "needle"),
    [
        ("model._target_", "torch.hub.load", "model._target_=torch.hub.load is not a builder"),
        ("trainer.optimizer._target_", "os.system", "trainer.optimizer._target_=os.system is not a builder"),
        ("loss._target_", "subprocess.run", "loss._target_=subprocess.run is not a builder"),
        ("model.name", "${oc.env:HOME}", "model.name='${oc.env:HOME}' is an interpolation"),
    ],
)
def test_a_checkpoint_config_never_names_code_to_run(tiny, tmp_path, key, value, needle):
    from omegaconf import OmegaConf

    from emotic_mm.checkpoint import load_config
    from emotic_mm.models.loading import load_model

    shared = _shared_copy(tiny.checkpoint, tmp_path / "shared", lambda c: OmegaConf.update(c, key, value))
    for load in (load_config, load_model):
        with pytest.raises(
            DataFormatError,
            match=f"config.yaml: {needle}".replace("$", r"\$")
            .replace("{", r"\{")
            .replace("}", r"\}")
            .replace("(", r"\("),
        ):
            load(shared)


def test_a_checkpoint_config_names_no_file_a_stage_uses(tiny, tmp_path):
    """Where a run reads and writes comes from the command, never from a shared checkpoint: its paths,
    hydra dirs, resume target, release and descriptions file are dropped; its store is followed only
    when it is the very store the checkpoint was trained on."""
    from omegaconf import OmegaConf

    from emotic_mm.checkpoint import load_config, read_meta
    from emotic_mm.prediction.preprocessing import trained_preprocessing

    decoy = tmp_path / "decoy"
    decoy.mkdir()
    (decoy / "manifest.json").write_text(
        json.dumps({"format": "emotic-mm-store", "splits": {}, "sizes": {"context": 99, "body": 77}})
    )

    def edit(cfg):
        for key, value in (
            ("paths.data_dir", "/etc"),
            ("hydra.run.dir", "/etc"),
            ("trainer.resume", "/etc/x"),
            ("data.raw_dir", "/etc"),
            ("text.path", "/etc/passwd"),
            ("checkpoint", "/etc"),
            ("data.prepared_dir", str(decoy)),
        ):
            OmegaConf.update(cfg, key, value, force_add=True)

    shared = _shared_copy(tiny.checkpoint, tmp_path / "shared", edit)
    cfg = load_config(shared)
    for key in ("paths", "hydra", "checkpoint", "data.raw_dir", "text.path"):
        assert OmegaConf.select(cfg, key) is None, key
    assert cfg.trainer.resume is False
    prep = trained_preprocessing(cfg, store_id=read_meta(shared)["store"])
    assert (prep.context_size, prep.body_size) != (99, 77) and prep.origin.startswith("checkpoint config")
    own = trained_preprocessing(load_config(tiny.checkpoint), store_id=read_meta(tiny.checkpoint)["store"])
    assert own.origin.startswith("store manifest")  # its own store is still read
