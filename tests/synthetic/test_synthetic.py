"""The synthetic release: deterministic per seed, EMOTIC-like label statistics, cues at the scale of
photographs, descriptions that name what is drawn and never a label word, the converter's skips,
and the shortcut probe."""

from __future__ import annotations

import importlib.util
import json
import sys
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
import scipy.io
import torch
from omegaconf import OmegaConf
from PIL import Image

from emotic_mm.data.categories import CATEGORIES
from emotic_mm.data.emotic_mat import SKIP_MISSING_IMAGE, SKIP_UNDECODABLE, load_annotations
from emotic_mm.synthetic import (
    BODY_CUES,
    CUE_SCALE,
    DISTRACTORS,
    FACE_CUES,
    POSTURE_CUES,
    SCENE_CUES,
    TEXT_CUES,
    SyntheticSpec,
    draw_picture,
    generate_raw,
    people,
    places,
    scene,
    text,
)
from support.cli import REPO
from support.digest import file_digests
from support.stores import synthetic_store
from support.text import label_words

SMALL = dict(images={"train": 24, "val": 20, "test": 20}, min_side=40, max_side=64)


def _mat_body(path: Path) -> bytes:
    return path.read_bytes()[128:]  # the 128-byte MAT header holds a creation timestamp


def _generate(spec: SyntheticSpec, raw: Path, workers: int = 0) -> dict[str, int]:
    raw.mkdir(parents=True)
    return generate_raw(spec, raw, workers=workers)


@pytest.mark.slow  # cost (~10 s): draws releases twice
def test_deterministic_for_a_seed(tmp_path):
    counts_a = _generate(SyntheticSpec(seed=5, **SMALL), tmp_path / "a")
    counts_b = _generate(SyntheticSpec(seed=5, **SMALL), tmp_path / "b", workers=2)  # in two processes
    assert counts_a == counts_b
    files_a, files_b = file_digests(tmp_path / "a"), file_digests(tmp_path / "b")
    mat = "Annotations/Annotations.mat"
    assert _mat_body(tmp_path / "a" / mat) == _mat_body(tmp_path / "b" / mat)
    files_a.pop(mat), files_b.pop(mat)
    assert files_a.keys() == files_b.keys()
    assert files_a == files_b  # every image, descriptions.jsonl and synthetic.json, byte for byte
    assert "workers" not in json.loads(
        (tmp_path / "a" / "synthetic.json").read_text()
    )  # how it was drawn is not what
    # the same persons read back (compared as reprs, where NaN VAD equals NaN)
    assert repr(load_annotations(tmp_path / "a" / mat)) == repr(load_annotations(tmp_path / "b" / mat))
    # a different seed gives a different release
    _generate(SyntheticSpec(seed=6, **SMALL), tmp_path / "c")
    assert _mat_body(tmp_path / "c" / mat) != _mat_body(tmp_path / "a" / mat)
    assert (tmp_path / "c" / "descriptions.jsonl").read_bytes() != files_a["descriptions.jsonl"]


def test_defects_are_injected(tmp_path):
    generate_raw(SyntheticSpec(seed=5, **SMALL), tmp_path)
    mat = scipy.io.loadmat(str(tmp_path / "Annotations" / "Annotations.mat"))
    for split in ("train", "val", "test"):
        missing = undecodable = 0
        for rec in mat[split].reshape(-1):
            path = tmp_path / "emotic" / rec["folder"][0] / rec["filename"][0]
            if not path.exists():
                missing += 1
            elif path.read_bytes().startswith(b"this is not an image"):
                undecodable += 1
        assert (missing, undecodable) == (1, 1), split


@pytest.fixture(scope="module")
def stats_raw(tmp_path_factory) -> Path:
    raw = tmp_path_factory.mktemp("synthetic_stats")
    generate_raw(
        SyntheticSpec(seed=11, images={"train": 500, "val": 40, "test": 40}, min_side=40, max_side=64), raw
    )
    return raw


@pytest.mark.slow  # big fixture: a 580-picture release
def test_label_statistics_are_emotic_like(stats_raw):
    ann = load_annotations(stats_raw / "Annotations" / "Annotations.mat")
    train = [p for p in ann["train"] if p.skip_reason != "no_category"]
    assert len(train) > 600
    per_person = Counter(len(p.categories) for p in train)
    assert set(per_person) <= {1, 2, 3, 4}, per_person
    assert per_person[1] > per_person[4] > 0
    freq = Counter(c for p in train for c in p.categories)
    assert freq.most_common(1)[0][0] == "Engagement"
    rarest = sorted(CATEGORIES, key=lambda c: freq[c])[:5]
    assert "Embarrassment" in rarest, freq
    assert freq["Embarrassment"] < 0.02 * len(train)
    for split in ("train", "val", "test"):
        persons_per_image = Counter(Counter(p.image_index for p in ann[split]).values())
        assert set(persons_per_image) <= {1, 2, 3} and persons_per_image[1] > 0
    everyone = [p for s in ann.values() for p in s]

    def leaves(p) -> bool:
        return p.bbox[0] < 0 or p.bbox[1] < 0 or p.bbox[2] > p.image_width or p.bbox[3] > p.image_height

    outside = [p for p in everyone if leaves(p)]
    assert 0.03 * len(everyone) < len(outside) < 0.3 * len(everyone)
    # boxes hold the drawn person: most are taller than wide
    inside = [p for p in everyone if not leaves(p)]
    assert np.mean([(p.bbox[3] - p.bbox[1]) > (p.bbox[2] - p.bbox[0]) for p in inside]) > 0.8
    # val/test: several annotators, votes count them
    assert max(max(p.votes) for p in ann["val"] if p.votes) >= 2
    assert all(1 <= p.vad[0] <= 10 for p in everyone if p.skip_reason is None)


def _vocabulary() -> list[str]:
    """Every phrase a description can be built from."""
    words = [
        *DISTRACTORS,
        *text.WEAR,
        *text.HAIR,
        *text.PLACE,
        *text.WALL_GROUND,
        *text.HOLD.values(),
        *scene.PHOTO_SETTINGS.values(),
        *places.PLACE_NAMES.values(),
        *scene.WALLS,
        *scene.GROUNDS,
        *people.CLOTH_COLOURS,
        *people.TROUSER_COLOURS,
        *people.HAIR_COLOURS,
        *people.GARMENTS,
        *people.PATTERNS,
    ]
    return words + [s for subject in text._SUBJECTS.values() for s in subject]


@pytest.mark.slow  # big fixture: a 580-picture release
def test_descriptions_never_contain_label_words(stats_raw):
    rows = [json.loads(line) for line in (stats_raw / "descriptions.jsonl").read_text().splitlines()]
    assert len(rows) > 600
    offenders = [(r["text"], label_words(r["text"])) for r in rows if label_words(r["text"])]
    assert offenders == []
    # and none of the building blocks could produce one
    for category, phrases in TEXT_CUES.items():
        for phrase in phrases:
            assert not label_words(phrase), (category, phrase)
    for phrase in _vocabulary():
        assert not label_words(phrase), phrase
    assert not any("{" in r["text"] for r in rows)  # every placeholder filled


@pytest.mark.slow  # big fixture: a 580-picture release
def test_descriptions_carry_the_text_cues(stats_raw):
    """Paraphrases show up for their categories (the text modality has signal)."""
    ann = load_annotations(stats_raw / "Annotations" / "Annotations.mat")
    rows = [json.loads(line) for line in (stats_raw / "descriptions.jsonl").read_text().splitlines()]
    by_key = {(r["folder"], r["filename"], r["person"]): r["text"] for r in rows}
    hits = total = 0
    for p in ann["train"]:
        if "Engagement" in p.categories:
            total += 1
            text_ = by_key[(p.folder, p.filename, p.person_index)]
            hits += any(phrase in text_ for phrase in TEXT_CUES["Engagement"])
    assert total > 50 and hits / total > 0.5


def test_descriptions_name_what_is_drawn():
    """Clothes, their colour, hair and the held object in a description are the drawn person's own, so
    the picture and the text of one person share instance-level content."""
    rng = np.random.default_rng(0)
    distinct = set()
    for i in range(60):
        look = people.sample_look(rng, 300, 300, 150, "Female" if i % 2 else "Male", "Adult")
        cues = ["arms_raised"] if i % 3 == 0 else []
        visible = people.held_visible(look, cues)
        words = text.description(rng, [], look, visible, {"wall": "brick wall", "ground": "grass"}, 0.75, 0.0)
        assert look.cloth in words and (look.garment in words or "dress" in words), words
        if look.held is not None:  # named only when it is drawn (raised arms drop it)
            assert (text.HOLD[look.held] in words) == visible, (words, cues)
        if look.hair and " hair" in words:
            assert f"{'long' if look.hair_long else 'short'} {look.hair} hair" in words, words
        if not look.hair:
            assert " hair" not in words, words
        distinct.add((look.cloth, look.garment, look.pattern, look.trousers, look.hair))
    assert len(distinct) > 50  # persons are told apart by what they wear


def _to_u8(image: np.ndarray) -> Image.Image:
    return Image.fromarray(np.clip(image * 255 + 0.5, 0, 255).astype(np.uint8))


def _changed(a: np.ndarray, b: np.ndarray, box: tuple[float, float, float, float] | None) -> int:
    """Pixels of the default encoder's working view that differ by more than 8/255: the body crop
    (``box``) or the context, stored as ``prepare`` stores them and resized as the encoder resizes them."""
    from emotic_mm.data.images import context_view, person_crop
    from emotic_mm.models.encoders import resize_view

    stored_size, working = _sizes()

    def seen(image: np.ndarray) -> np.ndarray:
        picture = _to_u8(image)
        view = "body" if box is not None else "context"
        stored = (
            person_crop(picture, box, picture.width, picture.height, stored_size[view])[0]
            if box is not None
            else context_view(picture, stored_size[view])
        )
        tensor = torch.from_numpy(np.array(stored)).permute(2, 0, 1)[None]
        return resize_view(tensor, working[view])[0].numpy()

    diff = np.abs(seen(a) - seen(b)).max(axis=0)
    return int((diff > 8).sum())


def _sizes() -> tuple[dict[str, int], dict[str, int]]:
    """The store's view sizes and the default image encoder's working sizes, for which CUE_SCALE is stated."""
    data = OmegaConf.load(REPO / "configs" / "data" / "synthetic.yaml").data
    encoder = OmegaConf.load(REPO / "configs" / "model" / "image_encoder" / "efficientnet_lite0.yaml")
    stored = {"context": int(data.context_size), "body": int(data.body_size)}
    working = {"context": int(encoder.input_size.context), "body": int(encoder.input_size.body)}
    assert working == {"context": 160, "body": 128}, (
        f"CUE_SCALE is stated for 160/128-pixel views, not {working}"
    )
    return stored, working


def _drawn_with_and_without(
    cue: str, seed: int, shot: str = "wide"
) -> tuple[np.ndarray, np.ndarray, tuple | None]:
    rng = np.random.default_rng([seed, 99])
    w, h = 320, 300
    backdrop, _ = scene.backdrop(rng, w, h)
    a, b = backdrop.copy(), backdrop.copy()
    if cue in BODY_CUES.values():
        look = people.sample_look(rng, w, h, w / 2, "Male" if seed % 2 else "Female", "Adult", shot)
        look.away = False  # a person seen from behind shows no face cue at all
        box = people.draw_person(a, look, [])
        people.draw_person(b, look, [cue])
        assert box is not None
        return a, b, box
    size = scene.object_size(rng, cue, w, h)
    assert scene.draw_object(b, cue, w / 2, h / 2, size, rng)
    return a, b, None


@pytest.mark.parametrize("cue", list(CUE_SCALE))
def test_each_cue_renders_at_its_intended_scale(cue):
    """Draw the same person (or scene) with and without the cue; count the pixels the cue changes in
    the view the model works on. Face cues in a close-up: a readable mouth, brows or tears; postures:
    limbs; scene objects: small. What a cue paints is textured, never one flat colour."""
    view, shot, low, high = CUE_SCALE[cue]
    counts, spreads = [], []
    for seed in range(8):
        a, b, box = _drawn_with_and_without(cue, seed, shot or "wide")
        counts.append(_changed(a, b, box))
        changed = (b - a)[np.abs(a - b).max(axis=-1) > 0.03]
        spreads.append(float(changed.std(axis=0).max()) if len(changed) else 0.0)
    assert low <= float(np.median(counts)) <= high, (cue, counts)
    assert max(counts) <= 1.5 * high, (cue, counts)
    if cue not in ("shadow",):
        assert np.median(spreads) > 0.02, (cue, spreads)


def test_a_smile_reads_in_a_close_up_and_hardly_from_afar():
    """The pixels a smile changes in the body view at the working resolution: dozens in a close-up, and
    the face itself is a few source pixels tall in a wide shot (unreadable, as in far photographs)."""
    close = [_changed(*_drawn_with_and_without("smile", seed, "close")) for seed in range(6)]
    assert np.median(close) >= 150, close
    rng = np.random.default_rng(3)
    heads = {shot: [] for shot in people.SHOT_FRAMING}
    for shot in heads:
        for _ in range(40):
            look = people.sample_look(rng, 320, 300, 160, "Female", "Adult", shot)
            heads[shot].append(2 * people.skeleton(look, []).ry / 300)  # head height / picture height
    assert np.median(heads["close"]) > 0.3 and np.median(heads["wide"]) < 0.1, {
        k: np.median(v) for k, v in heads.items()
    }


def test_cues_stay_noisy_with_the_configured_rates():
    """A present category's cue is drawn with prob cue_hit, an absent one's with prob cue_false."""
    from emotic_mm.synthetic import labels

    rng = np.random.default_rng(0)
    n = 4000
    drawn = Counter(c for _ in range(n) for c in labels.shown(rng, BODY_CUES, ["Happiness"], 0.8, 0.03))
    assert drawn["smile"] / n == pytest.approx(0.8, abs=0.03)
    assert all(drawn[c] / n == pytest.approx(0.03, abs=0.015) for c in BODY_CUES.values() if c != "smile")
    # in whole pictures too: the scene cues drawn follow the labels, with misses and false alarms
    spec = SyntheticSpec(min_side=60, max_side=80)
    hits = misses = false = 0
    for i in range(40):
        rng = np.random.default_rng([7, i])
        truths = [["Engagement", "Peace"]]
        picture = draw_picture(rng, 80, 70, truths, ["Male"], ["Adult"], spec)
        hits += ("board" in picture.scene_cues) + ("plant" in picture.scene_cues)
        misses += ("board" not in picture.scene_cues) + ("plant" not in picture.scene_cues)
        false += len(set(picture.scene_cues) - {"board", "plant"})
        assert len(picture.boxes) == 1 and len(picture.boxes[0]) == 4
    assert hits > misses > 0 and false < hits


def test_face_cues_are_smaller_than_postures():
    """The bands the per-cue test measures every cue against keep the two apart: the most a facial
    expression changes, even in a close-up, is less than the least a posture changes."""
    assert max(CUE_SCALE[c][3] for c in FACE_CUES) < min(CUE_SCALE[c][2] for c in POSTURE_CUES)
    assert set(BODY_CUES.values()) | set(SCENE_CUES.values()) == set(CUE_SCALE)


def test_places_follow_the_categories_with_the_configured_rates():
    """A present category's place is drawn with prob about place_hit, a random place otherwise with prob
    place_false; every place renders and its description names it without a label word."""
    rng = np.random.default_rng(0)
    n = 3000
    chosen = Counter(places.choose_place(rng, ["Peace"], 0.75, 0.12) for _ in range(n))
    assert chosen["beach"] / n == pytest.approx(0.75 + 0.25 * 0.12 / len(places.PLACES), abs=0.03)
    none = Counter(places.choose_place(rng, ["Engagement"], 0.75, 0.12) for _ in range(n))
    assert none[None] / n == pytest.approx(0.88, abs=0.03)
    for name in places.PLACES:
        pixels, setting = places.draw_place(np.random.default_rng(1), name, 90, 70)
        assert pixels.shape == (70, 90, 3) and 0 <= pixels.min() and pixels.max() <= 1 and pixels.std() > 0.02
        assert not label_words(setting["place"]), setting


@pytest.fixture(scope="module")
def converted(tmp_path_factory) -> tuple[Path, Path, dict]:
    from emotic_mm.data.store import read_manifest

    made = synthetic_store(
        tmp_path_factory.mktemp("synthetic_convert"),
        2,
        {"train": 40, "val": 24, "test": 24},
        max_length=32,
        min_side=60,
        max_side=96,
        nan_vad=0.05,
        no_annotator=0.05,
        empty_box=0.04,
    )
    return made.raw, made.store, read_manifest(made.store)


def test_the_raw_release_converts_with_the_same_skips(converted):
    """Every person is kept or skipped for the reason the release gives it: persons of the missing and
    the undecodable file, NaN VAD, no annotator, a box outside the picture."""
    raw, store, manifest = converted
    ann = load_annotations(raw / "Annotations" / "Annotations.mat")
    for split, persons in ann.items():
        expected: Counter = Counter()
        for p in persons:
            path = raw / "emotic" / p.folder / p.filename
            if p.skip_reason:
                expected[p.skip_reason] += 1
            elif not path.exists():
                expected[SKIP_MISSING_IMAGE] += 1
            elif path.read_bytes().startswith(b"this is not an image"):
                expected[SKIP_UNDECODABLE] += 1
            elif p.bbox[0] >= p.image_width or p.bbox[1] >= p.image_height:
                expected["empty_crop"] += 1
        info = manifest["splits"][split]
        skipped = {k: v for k, v in info["skipped"].items() if v}
        assert skipped == dict(expected), split
        assert info["kept"] == len(persons) - sum(expected.values())
        assert info["descriptions"] == {"file": info["kept"]}
    for reason in (SKIP_MISSING_IMAGE, SKIP_UNDECODABLE, "nan_vad", "no_category"):  # every defect occurs
        assert sum(s["skipped"].get(reason, 0) for s in manifest["splits"].values()) > 0, reason


def _load_script(name: str):
    folder = REPO / "scripts" / "probes" if name.startswith("probe_") else REPO / "scripts"
    spec = importlib.util.spec_from_file_location(name, folder / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.path.insert(0, str(folder))
    spec.loader.exec_module(module)
    return module


def test_shortcut_probe_runs_on_a_tiny_store(converted, tmp_path):
    pytest.importorskip("sklearn")
    _, store, _ = converted
    probe = _load_script("probe_shortcuts")
    eval_dir = tmp_path / "eval"
    eval_dir.mkdir()
    (eval_dir / "metrics.json").write_text(
        json.dumps({"map": 0.9, "split": "test", "modalities": ["context", "body"]})
    )
    out = tmp_path / "probe.json"
    report = probe.main(["--store", str(store), "--cnn-eval", str(eval_dir), "--out", str(out)])
    saved = json.loads(out.read_text())
    assert saved["probes"] == json.loads(json.dumps(report["probes"]))
    assert [p["probe"] for p in report["probes"]] == ["histogram", "thumbnail"]
    assert [p["features"] for p in report["probes"]] == [512, 48]
    labels = np.load(store / "test_cat_arr.npy")
    assert report["chance_map"] == pytest.approx(labels[:, labels.any(0)].mean(0).mean())
    assert report["chance_map"] < report["random_map"] < 1  # AP's small-sample bias lifts random scores
    for p in report["probes"]:
        assert 0 < p["test_map"] <= 1
        assert p["passes"] == (p["gain"] <= (0.9 - report["chance_map"]) / 3)
        assert p["passes_over_random"] == (
            p["test_map"] - report["random_map"] <= (0.9 - report["random_map"]) / 3
        )
    assert report["passes"] == all(p["passes"] for p in report["probes"])
    # the histogram feature is a distribution over 512 bins
    feats = probe.histogram_features(np.load(store / "test_context_arr.npy", mmap_mode="r")[:3])
    assert np.allclose((feats**2).sum(axis=1), 1.0, atol=1e-5)


def test_cue_learnability_probe_runs_on_a_tiny_store(converted, tmp_path, capsys):
    """One epoch per probe on the tiny store: the table's figures are APs with their counts, saved as
    JSON; a category name that is not one of the 26 is one line."""
    _, store, _ = converted
    probe = _load_script("probe_cue_learnability")
    labels = np.load(store / "train_cat_arr.npy")
    category = CATEGORIES[int(labels.sum(0).argmax())]
    out = tmp_path / "cues.json"
    results = probe.main(
        [
            "--store",
            str(store),
            "--probe",
            f"body:{category}",
            "--size",
            "32",
            "--epochs",
            "1",
            "--out",
            str(out),
        ]
    )
    assert json.loads(out.read_text()) == json.loads(json.dumps(results))
    (result,) = results
    assert result["train_positives"] == int(labels[:, CATEGORIES.index(category)].sum())
    assert 0 < result["val_prevalence"] < 1 and len(result["history"]) == 1
    assert (
        0 < result["history"][0]["train_ap"] <= 1 and result["best_val_ap"] == result["history"][0]["val_ap"]
    )
    with pytest.raises(SystemExit):
        probe.main(["--store", str(store), "--probe", "body:Joy", "--out", str(out)])
    assert capsys.readouterr().err.strip().endswith("--probe body:Joy: not one of the 26 categories")
    # a head crop: the top middle of the body view, cut at 64 px and read at 32
    (cropped,) = probe.main(
        [
            "--store",
            str(store),
            "--probe",
            f"body:{category}",
            "--size",
            "32",
            "--epochs",
            "1",
            "--crop",
            "0.2,0,0.8,0.3",
            "--crop-from",
            "64",
            "--out",
            str(out),
        ]
    )
    assert cropped["crop"] == (0.2, 0.0, 0.8, 0.3) and cropped["crop_from"] == 64
    assert 0 < cropped["history"][0]["val_ap"] <= 1
    view = torch.arange(64.0).view(1, 1, 1, 64).expand(1, 3, 64, 64)  # pixel value = its column
    head = probe.crop_view(view, (0.25, 0.0, 0.75, 0.5), 32)
    assert head.shape == (1, 3, 32, 32) and 16 <= head.min() and head.max() <= 48
    with pytest.raises(SystemExit):
        probe.main(
            [
                "--store",
                str(store),
                "--probe",
                f"body:{category}",
                "--crop",
                "0.8,0,0.2,0.3",
                "--out",
                str(out),
            ]
        )
    assert capsys.readouterr().err.strip().endswith("with 0 <= x0 < x1 <= 1 and 0 <= y0 < y1 <= 1")


def test_readme_figure_script_draws_the_default_pictures(tmp_path):
    show = _load_script("show_synthetic")
    out = show.render(tmp_path / "grid.png", seed=0, count=2, cols=2)
    with Image.open(out) as im:
        assert im.size[0] > 300 and im.mode == "P"
    assert out.stat().st_size < 300_000
    assert list(tmp_path.iterdir()) == [out]  # written atomically, nothing left beside it


def test_text_ceiling_probe_reads_the_descriptions_of_a_tiny_store(converted, tmp_path):
    """Both readers score test mAP in (0, 1]; the exact-phrase reader finds a paraphrase wherever the
    generator wrote one; an eval dir is shown beside them, one on another split is one line."""
    pytest.importorskip("sklearn")
    _, store, _ = converted
    probe = _load_script("probe_text_ceiling")
    eval_dir = tmp_path / "eval"
    eval_dir.mkdir()
    (eval_dir / "metrics.json").write_text(json.dumps({"map": 0.25, "split": "test", "modalities": ["text"]}))
    out = tmp_path / "text.json"
    report = probe.main(
        ["--store", str(store), "--oracle-phrases", "--eval", str(eval_dir), "--out", str(out)]
    )
    assert json.loads(out.read_text())["readers"] == json.loads(json.dumps(report["readers"]))
    assert [r["reader"].split()[0] for r in report["readers"]] == ["tfidf", "oracle"]
    assert all(0 < r["test_map"] <= 1 for r in report["readers"])
    assert report["evals"] == [{"map": 0.25, "modalities": ["text"], "path": str(eval_dir / "metrics.json")}]
    phrase = TEXT_CUES["Happiness"][0]
    scores = probe.oracle_phrase_scores([f"The man {phrase}.", "The man wears a red coat."])
    assert scores[:, CATEGORIES.index("Happiness")].tolist() == [1.0, 0.0] and scores[1].sum() == 0
    (eval_dir / "metrics.json").write_text(json.dumps({"map": 0.25, "split": "val"}))
    with pytest.raises(SystemExit, match="--eval .*split 'val', not test"):
        probe.main(["--store", str(store), "--eval", str(eval_dir), "--out", str(out)])
