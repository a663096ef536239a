"""Results that used to come out without a word: each is now refused, warned about or counted."""

from __future__ import annotations

import json
import logging

import pytest

from support.releases import Img, make_release, person, vperson


def test_an_annotated_size_far_from_the_files_is_counted_and_warned(tmp_path, caplog):
    """A 4000x4000 annotation for a 40x30 file: the person is kept (the box is clamped to the annotated size)
    but counted in the manifest, warned about in the log and listed in the manifest's warnings."""
    from support.stores import convert

    root = make_release(
        tmp_path / "raw",
        {
            "train": [
                Img("a.jpg", "mscoco/images", "rgb_jpg", [person([2, 2, 30, 28], ["Peace"])]),
                Img(
                    "big.jpg",
                    "mscoco/images",
                    "rgb_jpg",
                    [person([2, 2, 30, 28], ["Fear"])],
                    annotated=(4000, 4000),
                ),
                Img(
                    "near.jpg",
                    "mscoco/images",
                    "rgb_jpg",
                    [person([2, 2, 30, 28], ["Fear"])],
                    annotated=(36, 28),
                ),
            ],  # a few pixels off: no warning
            "val": [
                Img("b.jpg", "mscoco/images", "rgb_jpg", [vperson([1, 1, 20, 20], [["Fear"]], (3, 7, 3))])
            ],
            "test": [
                Img("c.png", "ade20k/images", "rgb_png", [vperson([0, 0, 40, 30], [["Pain"]], (2, 6, 2))])
            ],
        },
    )
    with caplog.at_level(logging.WARNING):
        manifest = convert(root, tmp_path / "store")
    train = manifest["splits"]["train"]
    assert train["kept"] == 3 and train["size_mismatch"] == 1
    assert manifest["splits"]["val"]["size_mismatch"] == 0
    assert any("size_mismatch" not in w and "annotated size" in w for w in manifest["warnings"])
    lines = [r.getMessage() for r in caplog.records if "annotated as" in r.getMessage()]
    assert len(lines) == 1 and "big.jpg: annotated as 4000x4000 but the file is 40x30" in lines[0]


@pytest.mark.parametrize(
    ("override", "needle"),
    [
        ("data.synthetic.images.train=-5", "data.synthetic.images.train=-5 must be >= 0"),
        ("data.synthetic.images.val=2.5", "data.synthetic.images.val=2.5 must be a whole number"),
        ("data.synthetic.cue_hit=1.5", "data.synthetic.cue_hit=1.5 must be <= 1"),
        ("data.synthetic.max_side=100", "data.synthetic.max_side=100 must be >= data.synthetic.min_side=200"),
    ],
)
@pytest.mark.slow  # CLI prepare x4
def test_bad_synthetic_settings_are_refused_before_drawing(tmp_path, override, needle):
    from support.cli import run_cli

    proc = run_cli(
        ["prepare", override, f"paths.data_dir={tmp_path / 'data'}", f"hydra.run.dir={tmp_path / 'r'}"]
    )
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert proc.returncode == 2 and len(lines) == 1 and needle in lines[0], proc.stderr[-2000:]
    assert not (tmp_path / "data").exists()  # nothing drawn


def test_predict_warns_per_row_about_pictures_and_boxes_too_small_to_show_a_person(tiny, tmp_path, caplog):
    """1x1 and 1x4000 pictures and a 3x4 box get a warning per row, in the log and in both files; a
    picture as large as the views does not."""
    import json

    import numpy as np
    import pandas as pd
    from PIL import Image

    from emotic_mm.stages.predict import predict
    from support.compose import compose_cfg

    rng = np.random.default_rng(0)
    for name, (w, h) in (("dot", (1, 1)), ("line", (1, 4000)), ("big", (300, 260))):
        Image.fromarray(rng.integers(0, 256, (h, w, 3), dtype=np.uint8)).save(tmp_path / f"{name}.png")
    csv = tmp_path / "people.csv"
    csv.write_text(
        "path,x1,y1,x2,y2,text\ndot.png,,,,,a\nline.png,,,,,b\nbig.png,10,10,13,14,c\nbig.png,,,,,d\n"
    )
    cfg = compose_cfg("predict", [f"checkpoint={tiny.checkpoint}", "device=cpu", f"input={csv}"])
    with caplog.at_level(logging.WARNING):
        result = predict(cfg, run_dir=tmp_path / "run")
    warnings = [r["warning"] for r in result["predictions"]]
    assert warnings[0].startswith("picture 1x1 px has a side below 128 px")
    assert warnings[1].startswith("picture 1x4000 px") and warnings[2].startswith("box 3x4 px")
    assert warnings[3] is None
    logged = [r.getMessage() for r in caplog.records if "too small or too thin" in r.getMessage()]
    assert len(logged) == 3 and logged[0].startswith("people.csv row")
    saved = json.loads((tmp_path / "run" / "predictions.json").read_text())
    assert [r["warning"] for r in saved["predictions"]] == warnings
    table = pd.read_csv(tmp_path / "run" / "predictions.csv", keep_default_na=False)
    assert table["warning"].tolist() == [*warnings[:3], ""]


@pytest.mark.slow  # CLI eval x2
def test_eval_names_the_model_overrides_a_checkpoint_makes_moot(tiny, tmp_path):
    """eval checkpoint=<baseline run> model=joint scores the checkpoint's model and says so once."""
    from support.cli import run_cli

    proc = run_cli(
        [
            "eval",
            f"checkpoint={tiny.checkpoint}",
            "model=joint",
            f"data.prepared_dir={tiny.store}",
            "split=val",
            f"hydra.run.dir={tmp_path / 'r'}",
        ],
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    out = proc.stdout + proc.stderr
    lines = [line for line in out.splitlines() if "fixes the model" in line]
    assert len(lines) == 1 and "ignoring model=joint (checkpoint: baseline;" in lines[0], out[-3000:]
    assert json.loads((tmp_path / "r" / "metrics.json").read_text())["variant"] == "baseline"
    again = run_cli(
        [
            "eval",
            f"checkpoint={tiny.checkpoint}",
            f"data.prepared_dir={tiny.store}",
            "split=val",
            f"hydra.run.dir={tmp_path / 'r2'}",
        ],
        timeout=300,
    )
    assert again.returncode == 0 and "fixes the model" not in again.stdout + again.stderr
