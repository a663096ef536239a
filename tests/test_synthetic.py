"""The synthetic release: deterministic per seed, EMOTIC-like label statistics, no label words in text."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest
import scipy.io

from conftest import label_words
from emotic_mm.data.categories import CATEGORIES
from emotic_mm.data.emotic_mat import load_annotations
from emotic_mm.data.synthetic import DISTRACTOR_ACTIONS, DISTRACTORS, TEXT_CUES, SyntheticSpec, generate_raw

SMALL = dict(images={"train": 24, "val": 20, "test": 20}, min_side=40, max_side=64)


def _files(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def _mat_body(path: Path) -> bytes:
    return path.read_bytes()[128:]  # the 128-byte MAT header holds a creation timestamp


def _generate(spec: SyntheticSpec, raw: Path) -> dict[str, int]:
    raw.mkdir(parents=True)
    return generate_raw(spec, raw)


def test_deterministic_for_a_seed(tmp_path):
    counts_a = _generate(SyntheticSpec(seed=5, **SMALL), tmp_path / "a")
    counts_b = _generate(SyntheticSpec(seed=5, **SMALL), tmp_path / "b")
    assert counts_a == counts_b
    files_a, files_b = _files(tmp_path / "a"), _files(tmp_path / "b")
    mat = "Annotations/Annotations.mat"
    assert _mat_body(tmp_path / "a" / mat) == _mat_body(tmp_path / "b" / mat)
    files_a.pop(mat), files_b.pop(mat)
    assert files_a.keys() == files_b.keys()
    assert files_a == files_b  # every image, descriptions.jsonl and synthetic.json, byte for byte
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
    generate_raw(SyntheticSpec(seed=11, images={"train": 500, "val": 40, "test": 40}, min_side=40, max_side=64), raw)
    return raw


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
    outside = [p for p in everyone if p.bbox[0] < 0 or p.bbox[1] < 0 or p.bbox[2] > p.image_width
               or p.bbox[3] > p.image_height]
    assert 0.03 * len(everyone) < len(outside) < 0.3 * len(everyone)
    # val/test: several annotators, votes count them
    assert max(max(p.votes) for p in ann["val"] if p.votes) >= 2
    assert all(1 <= p.vad[0] <= 10 for p in everyone if p.skip_reason is None)


def test_descriptions_never_contain_label_words(stats_raw):
    rows = [json.loads(line) for line in (stats_raw / "descriptions.jsonl").read_text().splitlines()]
    assert len(rows) > 600
    offenders = [(r["text"], label_words(r["text"])) for r in rows if label_words(r["text"])]
    assert offenders == []
    # and none of the building blocks could produce one
    for category, phrases in TEXT_CUES.items():
        for phrase in phrases:
            assert not label_words(phrase), (category, phrase)
    for phrase in (*DISTRACTORS, *DISTRACTOR_ACTIONS):
        assert not label_words(phrase), phrase


def test_descriptions_carry_the_text_cues(stats_raw):
    """Paraphrases show up for their categories (the text modality has signal)."""
    ann = load_annotations(stats_raw / "Annotations" / "Annotations.mat")
    rows = [json.loads(line) for line in (stats_raw / "descriptions.jsonl").read_text().splitlines()]
    by_key = {(r["folder"], r["filename"], r["person"]): r["text"] for r in rows}
    hits = total = 0
    for p in ann["train"]:
        if "Engagement" in p.categories:
            total += 1
            text = by_key[(p.folder, p.filename, p.person_index)]
            hits += any(phrase in text for phrase in TEXT_CUES["Engagement"])
    assert total > 50 and hits / total > 0.5
