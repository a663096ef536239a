"""Descriptions: file (CSV/JSONL) with template fallback, template, captioner; labels never reach them."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from emotic_mm.data.captioner import person_image
from emotic_mm.data.text import PersonMeta, template_description
from emotic_mm.errors import DataFormatError
from support.main_release import MAIN_EXPECTED
from support.stores import captioner_cfg, convert, read_csv_str, text_cfg
from support.text import label_words

# (folder, filename, person or None, text); person None = for every person of the image
ENTRIES = [
    ("mscoco/images", "train_rgb.jpg", 0, "Someone in a blue coat near the left edge."),
    ("mscoco/images", "train_rgb.jpg", None, "An image-level caption for the first picture."),
    ("framesdb/images", "val_b.png", 1, "A child stands by a wall, holding a kite."),
    ("framesdb/images", "val_b.png", 0, ""),  # an empty cell is a missing description
    ("emodb_small/images", "test_gray.png", 5, "No such person in this image."),
    ("mscoco/images", "not_in_the_release.jpg", 0, "Never used."),
]
# per split, the expected (text or None for the template) of every kept person, in store order
EXPECTED_FILE_TEXTS = {
    "train": [ENTRIES[0][3], ENTRIES[1][3], None, None, None],
    "val": [None, None, None, ENTRIES[2][3]],
    "test": [None],
}


def _write_csv(path: Path) -> Path:
    import pandas as pd

    rows = [{"folder": f, "filename": n, "person": p, "text": t} for f, n, p, t in ENTRIES]
    pd.DataFrame(rows).to_csv(path, index=False)
    return path


def _write_jsonl(path: Path) -> Path:
    with open(path, "w") as f:
        for folder, filename, p, t in ENTRIES:
            row = {"folder": folder, "filename": filename, "description": t}
            if p is not None:
                row["person"] = p
            f.write(json.dumps(row) + "\n")
    return path


@pytest.mark.parametrize("writer", [_write_csv, _write_jsonl], ids=["csv", "jsonl"])
def test_file_descriptions_with_template_fallback(main_raw, main_store, tmp_path, tokenizer, writer):
    path = writer(tmp_path / ("d.csv" if writer is _write_csv else "d.jsonl"))
    manifest = convert(main_raw, tmp_path / "store", text=text_cfg("file", path=str(path)))
    assert manifest["text_source"] == "file"
    assert manifest["sources"]["descriptions"]["path"] == str(path)
    for split, expected in EXPECTED_FILE_TEXTS.items():
        df = read_csv_str(tmp_path / "store" / f"{split}.csv")
        template = read_csv_str(main_store[0] / f"{split}.csv")["Description"].tolist()
        assert len(df) == len(expected) == len(MAIN_EXPECTED[split])
        for i, want in enumerate(expected):
            if want is None:
                assert df["Description_Source"][i] == "template", (split, i)
                assert df["Description"][i] == template[i], (split, i)
            else:
                assert df["Description_Source"][i] == "file", (split, i)
                assert df["Description"][i] == want, (split, i)
        n_file = sum(t is not None for t in expected)
        counts = {k: v for k, v in (("file", n_file), ("template", len(expected) - n_file)) if v}
        assert manifest["splits"][split]["descriptions"] == counts, split
        ids = np.load(tmp_path / "store" / f"{split}_token_ids_arr.npy")
        enc = tokenizer(df["Description"].tolist(), padding="max_length", truncation=True, max_length=64)
        np.testing.assert_array_equal(ids, enc["input_ids"])


@pytest.mark.parametrize("content,name", [
    ("folder,filename,person,caption_text\nmscoco/images,a.jpg,0,hello\n", "d.csv"),
    ('{"folder": "mscoco/images", "filename": "a.jpg", "words": "hello"}\n', "d.jsonl"),
    ('{"filename": "a.jpg", "text": "hello"}\n', "e.jsonl"),
])
def test_file_without_needed_columns(main_raw, tmp_path, content, name):
    path = tmp_path / name
    path.write_text(content)
    with pytest.raises(DataFormatError) as info:
        convert(main_raw, tmp_path / "out" / "store", text=text_cfg("file", path=str(path)))
    assert str(path) in str(info.value)
    assert not (tmp_path / "out").exists()


def test_missing_descriptions_file(main_raw, tmp_path):
    with pytest.raises(DataFormatError, match="descriptions file not found") as info:
        convert(main_raw, tmp_path / "store", text=text_cfg("file", path=str(tmp_path / "nope.jsonl")))
    assert str(tmp_path / "nope.jsonl") in str(info.value)
    assert not (tmp_path / "store").exists()


def test_unknown_text_source(main_raw, tmp_path):
    with pytest.raises(DataFormatError, match="text.source"):
        convert(main_raw, tmp_path / "store", text=text_cfg("oracle"))
    assert not (tmp_path / "store").exists()


def test_text_sources_are_built_from_their_target(tmp_path):
    """The same source from a text config (``_target_``) and from a block saved without one (a store's
    manifest): one rule, config → object. A _target_ outside emotic-mm is refused, as in checkpoints."""
    from omegaconf import OmegaConf

    from emotic_mm.config import configs_dir
    from emotic_mm.data.text import make_describer
    from emotic_mm.errors import ConfigError

    texts = tmp_path / "d.jsonl"
    texts.write_text('{"folder": "f", "filename": "x.jpg", "text": "hello"}\n')
    meta = PersonMeta(folder="f", filename="x.jpg", person_index=0, image_width=40, image_height=30,
                      bbox=(5, 4, 25, 28), box=(5, 4, 25, 28), gender="Male", age="Adult")
    for source in ("template", "file"):
        shipped = OmegaConf.load(configs_dir() / "text" / f"{source}.yaml")
        block = OmegaConf.merge(shipped, {"path": str(texts)})
        saved = {k: v for k, v in OmegaConf.to_container(block).items() if k != "_target_"}
        made, again = make_describer(block, tmp_path), make_describer(saved, tmp_path)
        assert type(made).__name__ == block._target_.rpartition(".")[2] and type(again) is type(made)
        assert made([meta]) == again([meta]) and made([meta]).sources == [source]
    with pytest.raises(ConfigError, match=r"text._target_=os.system is not a builder"):
        make_describer({"_target_": "os.system", "source": "template"}, tmp_path)
    unknown_key = r"^text \(_target_=emotic_mm.data.text.TemplateDescriber\): .*'colour'"
    with pytest.raises(ConfigError, match=unknown_key):
        make_describer({"source": "template", "colour": "red"}, tmp_path)


def test_sources_share_person_meta_without_importing_each_other():
    import ast

    import emotic_mm.data.captioner as captioner
    import emotic_mm.data.text as text

    for module, other in ((text, "emotic_mm.data.captioner"), (captioner, "emotic_mm.data.text")):
        tree = ast.parse(Path(module.__file__).read_text())
        imported = {n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)}
        assert other not in imported and "emotic_mm.data.descriptions" in imported
    assert text.PersonMeta is captioner.PersonMeta


# --------------------------------------------------------------------------- template
def test_template_uses_metadata_only(main_store):
    for split in ("train", "val", "test"):
        for text in read_csv_str(main_store[0] / f"{split}.csv")["Description"]:
            assert not label_words(text), text
    meta = PersonMeta(folder="mscoco/images", filename="a.jpg", person_index=0, image_width=40, image_height=30,
                      bbox=(-5, 0, 10, 30), box=(0, 0, 10, 30), gender="Female", age="Kid")
    text = template_description(meta)
    assert text.startswith("A young girl in an everyday photo from MS COCO.")
    assert "on the left" in text and "partly outside the frame" in text
    assert "label" not in PersonMeta.__dataclass_fields__ and "categories" not in PersonMeta.__dataclass_fields__


def _descriptions(store: Path) -> dict[str, list[str]]:
    return {s: read_csv_str(store / f"{s}.csv")["Description"].tolist() for s in ("train", "val", "test")}


def _labels(store: Path) -> dict[str, np.ndarray]:
    return {s: np.load(store / f"{s}_cat_arr.npy") for s in ("train", "val", "test")}


def _assert_same_descriptions_for_other_labels(a: Path, b: Path) -> None:
    for split in ("train", "val", "test"):  # the labels did change ...
        assert not np.array_equal(_labels(a)[split], _labels(b)[split]), split
        np.testing.assert_array_equal(np.load(a / f"{split}_bbox_arr.npy"), np.load(b / f"{split}_bbox_arr.npy"))
    assert _descriptions(a) == _descriptions(b)  # ... the descriptions did not
    for split in ("train", "val", "test"):
        np.testing.assert_array_equal(np.load(a / f"{split}_token_ids_arr.npy"),
                                      np.load(b / f"{split}_token_ids_arr.npy"))


def test_labels_never_reach_the_template(perm_raws, tmp_path):
    raw, permuted = perm_raws
    convert(raw, tmp_path / "a")
    convert(permuted, tmp_path / "b")
    _assert_same_descriptions_for_other_labels(tmp_path / "a", tmp_path / "b")


# --------------------------------------------------------------------------- captioner
@pytest.fixture(scope="module")
def captioned(perm_raws, tiny_blip, tmp_path_factory):
    """The perm release captioned with view=crop and view=box, recording what the model was shown."""
    import emotic_mm.data.captioner as captioner

    base = tmp_path_factory.mktemp("captioned")
    shown: dict[str, list[tuple[tuple[int, int], tuple[int, int]]]] = {"crop": [], "box": []}
    original = captioner.person_image
    stores = {}
    with pytest.MonkeyPatch.context() as mp:
        for view in ("crop", "box"):
            def spy(image, meta, v, _view=view):
                out = original(image, meta, v)
                shown[_view].append((image.size, out.size, meta.box))
                return out

            mp.setattr(captioner, "person_image", spy)
            stores[view] = (base / view, convert(perm_raws[0], base / view, text=captioner_cfg(tiny_blip, view)))
    return stores, shown


@pytest.mark.parametrize("view", ["crop", "box"])
def test_captioner_one_description_per_kept_person(captioned, tokenizer, view):
    stores, _ = captioned
    store, manifest = stores[view]
    assert manifest["text_source"] == "captioner"
    for split in ("train", "val", "test"):
        kept = manifest["splits"][split]["kept"]
        assert kept > 0
        df = read_csv_str(store / f"{split}.csv")
        assert len(df) == kept
        assert (df["Description_Source"] == "captioner").all()
        assert manifest["splits"][split]["descriptions"] == {"captioner": kept}
        ids = np.load(store / f"{split}_token_ids_arr.npy")
        assert ids.shape == (kept, 64)
        enc = tokenizer(df["Description"].tolist(), padding="max_length", truncation=True, max_length=64)
        np.testing.assert_array_equal(ids, enc["input_ids"])


def test_captioner_sees_the_configured_view(captioned):
    stores, shown = captioned
    n = sum(m["kept"] for m in stores["crop"][1]["splits"].values())
    assert len(shown["crop"]) == len(shown["box"]) == n
    for image_size, view_size, (x1, y1, x2, y2) in shown["crop"]:
        assert view_size == (x2 - x1, y2 - y1) != image_size
    for image_size, view_size, _ in shown["box"]:
        assert view_size == image_size


def test_person_image_views_differ():
    rng = np.random.default_rng(0)
    image = Image.fromarray(rng.integers(0, 200, (30, 40, 3), dtype=np.uint8))
    meta = PersonMeta(folder="f", filename="x.jpg", person_index=0, image_width=40, image_height=30,
                      bbox=(5, 4, 25, 28), box=(5, 4, 25, 28), gender="Male", age="Adult")
    crop = person_image(image, meta, "crop")
    box = person_image(image, meta, "box")
    assert crop.size == (20, 24) and box.size == (40, 30)
    np.testing.assert_array_equal(np.asarray(crop), np.asarray(image)[4:28, 5:25])
    drawn = np.asarray(box)
    assert tuple(drawn[4, 10]) == (255, 0, 0) and tuple(drawn[15, 5]) == (255, 0, 0)  # the red outline
    np.testing.assert_array_equal(drawn[0:3], np.asarray(image)[0:3])  # elsewhere untouched
    assert np.asarray(image)[4, 10].tolist() != [255, 0, 0]
    with pytest.raises(Exception, match="text.view"):
        person_image(image, meta, "sideways")


def test_labels_never_reach_the_captioner(captioned, perm_raws, tiny_blip, tmp_path):
    stores, _ = captioned
    convert(perm_raws[1], tmp_path / "permuted", text=captioner_cfg(tiny_blip, "crop"))
    _assert_same_descriptions_for_other_labels(stores["crop"][0], tmp_path / "permuted")
