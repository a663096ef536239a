"""The `emotic-mm` command in subprocesses: help, overrides, --config-dir, multirun, and bad inputs.

Every bad input must end with a non-zero exit code and ONE line on stderr naming the culprit, no
traceback, and nothing at data.prepared_dir. The bad-input runs are started together (each is a
separate process) so their start-up overlaps. Other bad layouts (a non-.mat file, a raw_dir that is
not a folder, a descriptions file without a text column) are checked in process by the other tests.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
import scipy.io
import yaml

from support import REPO, run_cli, run_cli_all
from support.releases import Img, make_release, person

pytestmark = pytest.mark.slow  # CLI: every test starts emotic-mm; multirun sweep


# --------------------------------------------------------------------------- bad inputs
def _good_release(root: Path) -> Path:
    return make_release(
        root, {"train": [Img("a.jpg", "mscoco/images", "rgb_jpg", [person([1, 1, 20, 20], ["Fear"])])]}
    )


def _case_no_mat(root: Path):
    (root / "raw" / "emotic" / "mscoco" / "images").mkdir(parents=True)
    return ["data.raw_dir=" + str(root / "raw")], str(root / "raw" / "Annotations" / "Annotations.mat")


def _case_no_splits(root: Path):
    _good_release(root / "raw")
    mat = root / "raw" / "Annotations" / "Annotations.mat"
    scipy.io.savemat(str(mat), {"images": np.zeros((1, 3)), "labels": np.ones((2, 2))})
    return ["data.raw_dir=" + str(root / "raw")], str(mat)


def _case_numeric_split(root: Path):
    _good_release(root / "raw")
    mat = root / "raw" / "Annotations" / "Annotations.mat"
    scipy.io.savemat(str(mat), {s: np.arange(6.0).reshape(1, 6) for s in ("train", "val", "test")})
    return ["data.raw_dir=" + str(root / "raw")], str(mat)


def _case_person_lacks_fields(root: Path):
    _good_release(root / "raw")
    mat = root / "raw" / "Annotations" / "Annotations.mat"
    persons = np.empty((1, 1), dtype=[("body_bbox", "O"), ("gender", "O")])
    persons[0, 0] = (np.array([[1.0, 1, 20, 20]]), np.array(["Male"]))
    size = np.empty((1, 1), dtype=[("n_col", "O"), ("n_row", "O")])
    size[0, 0] = (np.array([[40]]), np.array([[30]]))
    images = np.empty(
        (1, 1), dtype=[("filename", "O"), ("folder", "O"), ("image_size", "O"), ("person", "O")]
    )
    images[0, 0] = (np.array(["a.jpg"]), np.array(["mscoco/images"]), size, persons)
    scipy.io.savemat(str(mat), {"train": images, "val": images, "test": images})
    return ["data.raw_dir=" + str(root / "raw")], str(mat)


def _case_image_size_not_struct(root: Path):
    _good_release(root / "raw")
    mat_path = root / "raw" / "Annotations" / "Annotations.mat"
    mat = scipy.io.loadmat(str(mat_path))
    mat["train"][0, 0]["image_size"] = np.array([[40.0, 30.0]])
    scipy.io.savemat(str(mat_path), {s: mat[s] for s in ("train", "val", "test")})
    return ["data.raw_dir=" + str(root / "raw")], str(mat_path)


def _case_no_images(root: Path):
    _good_release(root / "raw")
    shutil.rmtree(root / "raw" / "emotic")
    return ["data.raw_dir=" + str(root / "raw")], str(root / "raw" / "emotic")


def _case_no_raw_dir(root: Path):
    return [], "data.raw_dir"


CASES = {
    "no_mat": _case_no_mat,
    "mat_without_splits": _case_no_splits,
    "split_is_numeric": _case_numeric_split,
    "person_lacks_fields": _case_person_lacks_fields,
    "image_size_not_a_struct": _case_image_size_not_struct,
    "no_images_folder": _case_no_images,
    "no_raw_dir": _case_no_raw_dir,
}


@pytest.fixture(scope="module")
def bad_runs(tmp_path_factory):
    """Start every bad-input run at once; results are collected when first needed."""
    runs, roots, expected = [], [], []
    for name, make in CASES.items():
        root = tmp_path_factory.mktemp(name)
        overrides, culprit = make(root)
        prepared = root / "out" / "store"
        args = [
            "prepare",
            "data=emotic",
            *overrides,
            f"data.prepared_dir={prepared}",
            f"hydra.run.dir={root / 'run'}",
        ]
        if not any(o.startswith("text=") for o in overrides):
            args.append("text=template")
        runs.append(args)
        roots.append(root)
        expected.append((name, culprit, prepared))
    return {
        name: (proc.returncode, proc.stdout, proc.stderr, culprit, prepared)
        for (name, culprit, prepared), proc in zip(expected, run_cli_all(runs, roots))
    }


@pytest.mark.parametrize("case", list(CASES))
def test_bad_input_gives_one_clear_line(bad_runs, case):
    code, out, err, culprit, prepared = bad_runs[case]
    lines = [line for line in err.splitlines() if line.strip()]
    assert code != 0
    assert "Traceback" not in err and "Traceback" not in out
    assert len(lines) == 1, err
    assert lines[0].startswith("emotic-mm prepare: error: "), lines[0]
    assert culprit in lines[0], lines[0]
    assert not prepared.exists() and not prepared.parent.exists()


def test_bad_input_messages_say_what_is_expected(bad_runs):
    def line(case):
        return bad_runs[case][2].strip()

    assert "annotations file not found" in line("no_mat")
    assert "missing split(s) train, val, test" in line("mat_without_splits")
    assert "lacks" in line("person_lacks_fields") and "annotations_categories" in line("person_lacks_fields")
    assert "images folder not found" in line("no_images_folder")
    assert "data.raw_dir is not set" in line("no_raw_dir")


# --------------------------------------------------------------------------- help, overrides, config dir
def test_top_level_help_lists_prepare():
    proc = run_cli(["--help"])
    assert proc.returncode == 0, proc.stderr
    assert "prepare" in proc.stdout and "Commands" in proc.stdout


def test_prepare_help_is_hydra_help():
    proc = run_cli(["prepare", "--help"])
    assert proc.returncode == 0, proc.stderr
    assert "emotic-mm prepare is powered by Hydra" in proc.stdout
    assert "== Configuration groups ==" in proc.stdout
    assert "data: emotic, synthetic" in proc.stdout
    assert "text: captioner, file, template" in proc.stdout


def test_override_shows_in_cfg_job(tmp_path):
    proc = run_cli(
        [
            "prepare",
            "data=emotic",
            f"data.raw_dir={tmp_path}/release",
            "text=template",
            "tokenizer.max_length=48",
            "--cfg",
            "job",
        ],
        cwd=tmp_path,
    )
    assert proc.returncode == 0, proc.stderr
    cfg = yaml.safe_load(proc.stdout)
    assert cfg["data"]["name"] == "emotic" and cfg["data"]["raw_dir"] == f"{tmp_path}/release"
    assert cfg["text"] == {"_target_": "emotic_mm.data.text.TemplateDescriber", "source": "template"}
    assert cfg["tokenizer"]["max_length"] == 48
    assert not any(tmp_path.iterdir())  # --cfg job runs nothing


def test_user_config_dir_is_searched(tmp_path):
    user = tmp_path / "user_configs"
    (user / "data").mkdir(parents=True)
    (user / "data" / "mydata.yaml").write_text(
        "name: mydata\nraw_dir: /data/mine\nprepared_dir: /data/mine_store\nworkers: 0\n"
        "context_size: 224\nbody_size: 128\n"
    )
    proc = run_cli(
        ["prepare", "--config-dir", str(user), "data=mydata", "text=template", "--cfg", "job"], cwd=tmp_path
    )
    assert proc.returncode == 0, proc.stderr
    cfg = yaml.safe_load(proc.stdout)
    assert cfg["data"]["name"] == "mydata" and cfg["data"]["raw_dir"] == "/data/mine"
    assert cfg["tokenizer"]["name"] == "shipped:all-MiniLM-L6-v2"  # the packaged primary config still applies


# --------------------------------------------------------------------------- multirun
def test_multirun_two_seeds(tmp_path):
    sweep = tmp_path / "sweep"
    data = tmp_path / "data"
    proc = run_cli(
        [
            "prepare",
            "-m",
            "data.synthetic.seed=1,2",
            "data.synthetic.images.train=6",
            "data.synthetic.images.val=4",
            "data.synthetic.images.test=4",
            "data.synthetic.defects_per_split=0",
            "data.synthetic.min_side=48",
            "data.synthetic.max_side=64",
            "data.workers=0",
            f"paths.data_dir={data}",
            f"hydra.sweep.dir={sweep}",
        ],
        cwd=tmp_path,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "Traceback" not in proc.stderr
    head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=str(REPO), capture_output=True, text=True)
    descriptions = {}
    for job, seed in ((0, 1), (1, 2)):
        store = data / "prepared" / f"synthetic_seed{seed}"
        manifest = json.loads((store / "manifest.json").read_text())
        assert manifest["dataset"] == "synthetic" and manifest["synthetic"]["seed"] == seed
        assert manifest["text_source"] == "file"
        assert all(manifest["splits"][s]["kept"] > 0 for s in ("train", "val", "test"))
        assert all(set(manifest["splits"][s]["descriptions"]) == {"file"} for s in ("train", "val", "test"))
        descriptions[seed] = (store / "train.csv").read_text()
        run_dir = sweep / str(job)
        info = json.loads((run_dir / "run.json").read_text())
        assert info["seed"] == seed and info["stage"] == "prepare"
        assert {"python", "torch", "transformers", "numpy", "hydra-core"} <= set(info["versions"])
        assert set(info["git"]) == {"commit", "dirty"}
        if head.returncode == 0:
            assert info["git"]["commit"] == head.stdout.strip()
        cfg = yaml.safe_load((run_dir / "config.yaml").read_text())
        assert cfg["data"]["synthetic"]["seed"] == seed
        assert cfg["data"]["prepared_dir"] == str(store)  # resolved, not ${...}
        assert (run_dir / "prepare.json").is_file()
    assert descriptions[1] != descriptions[2]
    assert sorted(p.name for p in (data / "prepared").iterdir()) == ["synthetic_seed1", "synthetic_seed2"]
