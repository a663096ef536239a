"""Fixed encoders' features on disk: a second run reads what the first computed, exactly, and a changed
backbone never reads another's features."""

from __future__ import annotations

import torch

from emotic_mm.models.encoders import ImageEncoder
from emotic_mm.models.warming import warm_image_features


class Pictures:
    """The two methods warm_image_features uses of a dataset."""

    def __init__(self, n: int, seed: int = 0) -> None:
        self.pixels = torch.randint(0, 256, (n, 3, 32, 32), generator=torch.Generator().manual_seed(seed)).to(
            torch.uint8
        )

    def __len__(self) -> int:
        return len(self.pixels)

    def __getitems__(self, ids: list[int]) -> dict[str, torch.Tensor]:
        return {"context": self.pixels[ids]}


class Holder(torch.nn.Module):
    def __init__(self, seed: int = 0) -> None:
        super().__init__()
        torch.manual_seed(seed)
        self.image_encoders = torch.nn.ModuleDict(
            {"context": ImageEncoder(name="resnet18", weights=None, input_size=32, freeze=True).eval()}
        )


def test_second_run_reads_the_features_the_first_computed(tmp_path, monkeypatch):
    data = Pictures(10)
    first = Holder()
    warm_image_features(first, [(data, True)], batch_size=4, cache_dir=tmp_path)
    files = list(tmp_path.glob("context-*.npz"))
    assert len(files) == 1
    second = Holder()  # same weights (same seed): same identity
    monkeypatch.setattr(
        second.image_encoders["context"],
        "_encode",
        lambda pixels: (_ for _ in ()).throw(AssertionError("the backbone ran")),
    )
    warm_image_features(second, [(data, True)], batch_size=4, cache_dir=tmp_path)
    for picture in (data.pixels, data.pixels.flip(-1)):
        with torch.no_grad():
            torch.testing.assert_close(
                second.image_encoders["context"](picture.float()),
                first.image_encoders["context"](picture.float()),
                rtol=0,
                atol=0,
            )


def test_other_weights_or_new_pictures_are_computed(tmp_path):
    warm_image_features(Holder(seed=0), [(Pictures(6), False)], batch_size=4, cache_dir=tmp_path)
    other = Holder(seed=1)
    warm_image_features(other, [(Pictures(6), False)], batch_size=4, cache_dir=tmp_path)
    assert len(list(tmp_path.glob("context-*.npz"))) == 2  # a different backbone: its own file
    more = Holder(seed=0)
    warm_image_features(
        more, [(Pictures(6), False), (Pictures(5, seed=7), False)], batch_size=4, cache_dir=tmp_path
    )
    import numpy as np

    sizes = sorted(len(np.load(f)["keys"]) for f in tmp_path.glob("context-*.npz"))
    assert sizes == [6, 11]  # the first file grew by the new pictures and kept its own


def test_a_deterministic_input_defense_is_memoised_under_its_own_name(tmp_path):
    """A median filter in front of a fixed backbone: its features are memoised and kept on disk, in a file
    of their own (never the bare backbone's), and equal the filtered picture's features computed afresh;
    randomized ablation (fresh positions per call) is never memoised."""
    from emotic_mm.defenses.ablation import RandomAblation
    from emotic_mm.defenses.smoothing import MedianFilter

    data = Pictures(6)
    warm_image_features(Holder(), [(data, False)], batch_size=4, cache_dir=tmp_path)
    defended = Holder()
    encoder = defended.image_encoders["context"]
    encoder.attach_defense(MedianFilter(window=3))
    warm_image_features(defended, [(data, False)], batch_size=4, cache_dir=tmp_path)
    assert len(list(tmp_path.glob("context-*.npz"))) == 2
    assert len(encoder.memo) == len(data)
    with torch.no_grad():
        torch.testing.assert_close(encoder(data.pixels.float()), encoder._encode(data.pixels.float()))
    ablated = Holder().image_encoders["context"]
    ablated.attach_defense(RandomAblation(keep=50))
    with torch.no_grad():
        ablated(data.pixels.float())
    assert len(ablated.memo) == 0
