"""``emotic-mm predict``: new photos get exactly prepare's preprocessing, a batch streams through a
DataLoader, and every input mistake is one line."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from PIL import Image

from emotic_mm.data.categories import CATEGORIES
from emotic_mm.errors import EmoticMMError
from support import compose_cfg, run_cli
from support.stores import captioner_cfg


@pytest.fixture(scope="session")
def photo(tmp_path_factory) -> Path:
    """A new 90x60 RGBA photo (prepare drops alpha; predict must too)."""
    rng = np.random.default_rng(7)
    path = tmp_path_factory.mktemp("photos") / "holiday" / "beach.png"
    path.parent.mkdir()
    Image.fromarray(rng.integers(0, 256, (60, 90, 4), dtype=np.uint8), "RGBA").save(path)
    return path


def _predict(tiny_or_ckpt, run_dir: Path, *overrides: str) -> dict:
    from emotic_mm.stages.predict import predict

    ckpt = getattr(tiny_or_ckpt, "checkpoint", tiny_or_ckpt)
    return predict(compose_cfg("predict", [f"checkpoint={ckpt}", "device=cpu", *overrides]), run_dir=run_dir)


def _store_persons(tiny) -> pd.DataFrame:
    """Every stored person with its box as annotated (before clamping), its description and its row."""
    from emotic_mm.data.emotic_mat import load_annotations

    annotated = {
        (p.folder, p.filename, p.person_index): p
        for persons in load_annotations(tiny.raw / "Annotations" / "Annotations.mat").values()
        for p in persons
    }
    rows = []
    for split in ("train", "val", "test"):
        table = pd.read_csv(tiny.store / f"{split}.csv")
        for i, r in table.iterrows():
            p = annotated[(r["Folder"], r["Filename"], int(r["Person"]))]
            rows.append(
                {
                    "split": split,
                    "i": i,
                    "path": str(tiny.raw / "emotic" / r["Folder"] / r["Filename"]),
                    "x1": p.bbox[0],
                    "y1": p.bbox[1],
                    "x2": p.bbox[2],
                    "y2": p.bbox[3],
                    "text": r["Description"],
                    "size": (p.image_width, p.image_height),
                }
            )
    return pd.DataFrame(rows)


def test_same_arrays_tokens_and_outputs_as_prepare(tiny, tmp_path):
    """Store photos with their annotated boxes and descriptions give the store's arrays and token ids,
    and predict's scores equal the model's on the stored arrays."""
    from emotic_mm.checkpoint import load_config, read_meta
    from emotic_mm.data.photos import PhotoDataset, check_photos, read_csv_input
    from emotic_mm.data.store import Store
    from emotic_mm.data.tokens import load_tokenizer, tokenize
    from emotic_mm.prediction.preprocessing import trained_preprocessing

    persons = _store_persons(tiny)
    sizes = [Image.open(p).size for p in persons["path"]]
    assert all(tuple(s) == tuple(a) for s, a in zip(sizes, persons["size"]))  # annotated = decoded size here
    outside = (
        (persons.x1 < 0)
        | (persons.y1 < 0)
        | (persons.x2 > [s[0] for s in sizes])
        | (persons.y2 > [s[1] for s in sizes])
    )
    assert outside.any() and (persons.x1 % 1 != 0).any()  # clamping and truncation are exercised
    csv = tmp_path / "people.csv"
    persons[["path", "x1", "y1", "x2", "y2", "text"]].to_csv(csv, index=False)

    prep = trained_preprocessing(load_config(tiny.checkpoint), store_id=read_meta(tiny.checkpoint)["store"])
    assert (prep.context_size, prep.body_size, prep.max_length, prep.text_source) == (224, 128, 48, "file")
    photos = read_csv_input(csv)
    check_photos(photos, needs_image=True)
    tokens = tokenize([p.text for p in photos], load_tokenizer(prep.tokenizer), prep.max_length)
    data = PhotoDataset(photos, ["context", "body", "text"], 224, 128, tokens.ids, tokens.lengths)
    store = Store(tiny.store)
    for k, row in persons.iterrows():
        split = store[row["split"]]
        item = data[k]
        np.testing.assert_array_equal(item["context"].permute(1, 2, 0).numpy(), split.context[row["i"]])
        np.testing.assert_array_equal(item["body"].permute(1, 2, 0).numpy(), split.body[row["i"]])
        np.testing.assert_array_equal(tokens.ids[k], split.token_ids[row["i"]])
        assert tokens.lengths[k] == split.token_lengths[row["i"]]
        assert list(photos[k].box) == [int(v) for v in split.boxes[row["i"]]]

    # the scores: predict on the test persons vs the model on the stored test arrays
    from emotic_mm.data.loader import EmoticDataset
    from emotic_mm.models.loading import load_model
    from emotic_mm.training.distributed import DistInfo
    from emotic_mm.training.inference import collect_outputs
    from emotic_mm.training.runtime import make_loader

    test = persons[persons.split == "test"]
    test[["path", "x1", "y1", "x2", "y2", "text"]].to_csv(tmp_path / "test.csv", index=False)
    result = _predict(tiny, tmp_path / "run", f"input={tmp_path / 'test.csv'}", "batch_size=4")
    got = torch.tensor([[r["scores"][c] for c in CATEGORIES] for r in result["predictions"]])
    model, _, _ = load_model(tiny.checkpoint)
    loader = make_loader(EmoticDataset(store["test"]), 4, 0, torch.device("cpu"), False, 0, DistInfo())
    want = torch.sigmoid(collect_outputs(model, loader, torch.device("cpu"))["logits"])
    torch.testing.assert_close(got, want, rtol=0, atol=1e-5)


@pytest.mark.slow  # CLI predict
def test_cli_one_image_with_box_and_text(tiny, photo, tmp_path):
    run = tmp_path / "run"
    proc = run_cli(
        [
            "predict",
            f"checkpoint={tiny.checkpoint}",
            f"input={photo}",
            "bbox=[-10,5,50,70]",
            "text=a man holding a trophy",
            "top_k=3",
            f"hydra.run.dir={run}",
        ],
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    result = json.loads((run / "predictions.json").read_text())
    (r,) = result["predictions"]
    assert r["text"] == "a man holding a trophy" and r["text_source"] == "given"
    assert r["bbox"] == [-10, 5, 50, 70] and r["box"] == [0, 5, 50, 60] and r["image_size"] == [90, 60]
    scores = [e["score"] for e in r["top_k"]]
    assert len(scores) == 3 and scores == sorted(scores, reverse=True)
    assert r["dominant"] == r["top_k"][0]["emotion"] == max(r["scores"], key=r["scores"].get)
    assert set(r["vad"]) == {"valence", "arousal", "dominance"}
    table = pd.read_csv(run / "predictions.csv")
    assert (
        len(table) == 1
        and table.loc[0, "dominant"] == r["dominant"]
        and list(table.columns[-26:]) == list(CATEGORIES)
    )
    assert f"dominant emotion: {r['dominant']}" in proc.stdout and r["top_k"][2]["emotion"] in proc.stdout
    assert (run / "run.json").is_file()


def test_no_box_is_the_whole_image_and_no_text_is_the_template(tiny, photo, tmp_path, capsys):
    from emotic_mm.data.images import open_rgb, resize_rgb
    from emotic_mm.data.photos import Photo, PhotoDataset
    from emotic_mm.data.text import PersonMeta, template_description

    result = _predict(tiny, tmp_path, f"input={photo}")
    (r,) = result["predictions"]
    assert r["bbox"] is None and r["box"] == [0, 0, 90, 60]
    meta = PersonMeta(
        folder="holiday",
        filename="beach.png",
        person_index=0,
        image_width=90,
        image_height=60,
        bbox=(0, 0, 90, 60),
        box=(0, 0, 90, 60),
        gender="",
        age="",
    )
    assert r["text"] == template_description(meta) and r["text_source"] == "template"
    assert result["preprocessing"]["trained_text_source"] == "file"
    assert "template" in result["preprocessing"]["without_text"]
    out = capsys.readouterr().out.replace("\n", " ")
    assert "descriptions: template" in out and "trained on 'file' descriptions" in out
    body = PhotoDataset([Photo(0, "p", photo, box=(0, 0, 90, 60))], ["body"], 224, 128)[0]["body"]
    np.testing.assert_array_equal(body.permute(1, 2, 0).numpy(), resize_rgb(open_rgb(photo), 128))


def test_csv_batch_streams_through_the_loader(tiny, photo, tmp_path, monkeypatch):
    import emotic_mm.prediction.scoring as stage

    other = tmp_path / "pics" / "street.jpg"
    other.parent.mkdir()
    Image.fromarray(np.random.default_rng(1).integers(0, 256, (50, 70, 3), dtype=np.uint8)).save(other)
    csv = tmp_path / "people.csv"
    csv.write_text(
        "path,x1,y1,x2,y2,text\n"
        f"{photo},10,5,40,55,a woman laughing\n"
        "pics/street.jpg,,,,,\n"  # relative to the CSV, no box, no text
        f"{photo},,,,,someone waiting\n"
        "pics/street.jpg,0,0,30,30,\n"
        f"{photo},10,5,40,55,a woman laughing\n"
    )
    batches = []
    original = stage.collect_outputs

    def spy(model, loader, *args, **kw):
        def counted():
            for batch in loader:
                batches.append(len(batch["index"]))
                yield batch

        return original(model, counted(), *args, **kw)

    monkeypatch.setattr(stage, "collect_outputs", spy)
    result = _predict(tiny, tmp_path / "run", f"input={csv}", "batch_size=2", "print_rows=3")
    assert batches == [2, 2, 1]
    preds = result["predictions"]
    assert [p["row"] for p in preds] == [0, 1, 2, 3, 4]
    assert [p["text_source"] for p in preds] == ["given", "template", "given", "template", "given"]
    assert (
        preds[1]["path"] == str(other)
        and preds[1]["box"] == [0, 0, 70, 50]
        and preds[3]["box"] == [0, 0, 30, 30]
    )
    assert preds[0]["scores"] == pytest.approx(preds[4]["scores"], abs=1e-6)  # same person, same scores
    single = _predict(
        tiny, tmp_path / "one", f"input={photo}", "bbox=[10,5,40,55]", "description=a woman laughing"
    )
    assert preds[0]["scores"] == pytest.approx(single["predictions"][0]["scores"], abs=1e-5)
    table = pd.read_csv(tmp_path / "run" / "predictions.csv")
    assert len(table) == 5 and table["dominant"].tolist() == [p["dominant"] for p in preds]


def test_text_only_checkpoint_needs_no_picture(tiny_text_only, tmp_path):
    ckpt = tiny_text_only
    csv = tmp_path / "texts.csv"
    csv.write_text("text\nshe jumps up and down after the goal\nhe stares at the floor\n")
    result = _predict(ckpt, tmp_path / "run", f"input={csv}")
    assert [p["path"] for p in result["predictions"]] == [None, None]
    assert result["predictions"][0]["scores"] != result["predictions"][1]["scores"]
    alone = _predict(ckpt, tmp_path / "alone", "description=he stares at the floor")
    assert alone["predictions"][0]["scores"] == pytest.approx(result["predictions"][1]["scores"], abs=1e-5)


@pytest.mark.parametrize(
    "case,message",
    [
        ("missing", "no such image file"),
        ("unreadable", "not a readable image"),
        ("outside", "lies outside the 90x60 image"),
        ("empty_box", "is empty (need x1 < x2 and y1 < y2)"),
        ("no_input", "input is not set"),
        ("csv_no_path", "unknown column(s) image; expected path"),
        ("csv_half_box", "row 1 (x.png): give all of x1, y1, x2, y2 or none"),
        ("csv_and_text", "bbox= and text= go with a single image"),
        ("no_text_strict", "no text, and the checkpoint reads text"),
        ("picture_model_no_picture", "no image path, but the checkpoint reads pictures"),
        ("truncated", "row 1 (cut.png): the image header reads but the pixels do not decode"),
    ],
)
def test_input_mistakes_are_clear(tiny, photo, tmp_path, case, message):
    bad = tmp_path / "bad.jpg"
    bad.write_bytes(b"not an image at all")
    whole = photo.read_bytes()
    (tmp_path / "cut.png").write_bytes(whole[: len(whole) // 2])  # the header survives, the pixels do not
    csv = tmp_path / "in.csv"
    over = {
        "missing": [f"input={tmp_path / 'nope.jpg'}"],
        "unreadable": [f"input={bad}"],
        "outside": [f"input={photo}", "bbox=[100,70,140,90]"],
        "empty_box": [f"input={photo}", "bbox=[30,20,10,40]"],
        "no_input": [],
        "csv_no_path": [f"input={csv}"],
        "csv_half_box": [f"input={csv}"],
        "csv_and_text": [f"input={csv}", "description=hello"],
        "no_text_strict": [f"input={photo}", "text_fallback=none"],
        "picture_model_no_picture": [f"input={csv}"],
        "truncated": [f"input={csv}"],
    }[case]
    csv.write_text(
        {
            "csv_no_path": "image,text\nx.png,hi\n",
            "csv_half_box": "path,x1,y1,x2,y2\nx.png,1,2,,\n",
            "picture_model_no_picture": "path,text\n,a person smiling\n",
            "truncated": "path\ncut.png\n",
        }.get(case, f"path\n{photo}\n")
    )
    with pytest.raises(EmoticMMError, match=re.escape(message)):
        _predict(tiny, tmp_path / "run", *over)


@pytest.mark.slow  # CLI predict
def test_cli_error_is_one_line(tiny, photo, tmp_path):
    proc = run_cli(
        [
            "predict",
            f"checkpoint={tiny.checkpoint}",
            f"input={photo}",
            "bbox=[100,70,140,90]",
            f"hydra.run.dir={tmp_path / 'r'}",
        ],
        timeout=300,
    )
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert proc.returncode == 2 and len(lines) == 1, proc.stderr[-2000:]
    assert (
        lines[0] == f"emotic-mm predict: error: {photo}: bbox=[100, 70, 140, 90] lies outside the 90x60 image"
    )


def test_settings_from_the_checkpoint_config_when_its_store_is_gone(tiny):
    from omegaconf import OmegaConf

    from emotic_mm.checkpoint import load_config
    from emotic_mm.prediction.preprocessing import trained_preprocessing

    cfg = load_config(tiny.checkpoint)
    OmegaConf.update(cfg, "data.prepared_dir", "/nowhere/store")
    OmegaConf.update(cfg, "data.body_size", 96)
    prep = trained_preprocessing(cfg)
    assert prep.origin.startswith("checkpoint config") and "64, prepare's default" in prep.origin
    assert (prep.body_size, prep.max_length, prep.text_source, prep.fallback_source) == (
        96,
        64,
        "file",
        "template",
    )
    assert trained_preprocessing(cfg, max_length=32).max_length == 32


def test_a_captioner_store_means_captioning_new_photos(tiny_blip, photo):
    """No text + a checkpoint whose store was captioned: the same captioner describes the new photo."""
    from emotic_mm.data.photos import Photo, check_photos
    from emotic_mm.prediction.inputs import describe_missing
    from emotic_mm.prediction.preprocessing import Preprocessing

    prep = Preprocessing(
        ["context", "text"],
        224,
        128,
        "shipped:all-MiniLM-L6-v2",
        48,
        "captioner",
        captioner_cfg(tiny_blip),
        "test",
    )
    photos = [Photo(0, "a", photo, bbox=(10, 5, 40, 55)), Photo(1, "b", photo, text="given text")]
    check_photos(photos, needs_image=True)
    describe_missing(photos, prep, "checkpoint")
    assert photos[0].text_source == "captioner" and photos[0].text.strip()
    assert (photos[1].text, photos[1].text_source) == ("given text", "given")
    assert "captioned by" in prep.fallback_note
