"""The defense mechanisms on tiny tensors: smoothing, randomized ablation and its L0 certificate (formula,
soundness by exhaustive and by seeded attack), the poison detectors and STRIP, and the registry/configs."""

from __future__ import annotations

import itertools
import math
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest
import torch
from omegaconf import OmegaConf
from torch import nn

from emotic_mm.defenses import ablation as abl
from emotic_mm.defenses.certify import (
    certified_accuracy,
    certified_radius,
    certify,
    clopper_pearson_lower,
    delta,
    median_certified_radius,
)
from emotic_mm.defenses.detectors import activation_clustering, spectral_signatures
from emotic_mm.defenses.registry import DEFENSES
from emotic_mm.defenses.smoothing import BitDepth, MedianFilter
from emotic_mm.defenses.strip import strip_entropy, strip_flags, threshold_at_frr
from emotic_mm.errors import ConfigError

CONFIGS = Path(__file__).resolve().parents[2] / "configs" / "defense"


def one_line_error(fn, *args, match: str, **kwargs) -> str:
    with pytest.raises(ConfigError, match=match) as err:
        fn(*args, **kwargs)
    assert "\n" not in str(err.value)
    return str(err.value)


# =========================================================================== smoothing
@pytest.mark.parametrize("window", [3, 5])
def test_median_filter_matches_scipy(window):
    from scipy.ndimage import median_filter

    x = torch.randint(0, 256, (2, 3, 9, 11), generator=torch.Generator().manual_seed(0)).float()
    ours = MedianFilter(window)(x)
    ref = median_filter(
        x.numpy(), size=(1, 1, window, window), mode="mirror"
    )  # torch "reflect" = scipy "mirror"
    assert ours.shape == x.shape
    np.testing.assert_array_equal(ours.numpy(), ref)


def test_median_filter_removes_isolated_pixels_and_passes_gradients():
    x = torch.full((1, 3, 8, 8), 60.0)
    x[0, :, 3, 4] = 255.0
    x[0, 0, 0, 0] = 0.0  # a corner pixel too
    x.requires_grad_(True)
    y = MedianFilter(3)(x)
    assert torch.equal(y.detach(), torch.full((1, 3, 8, 8), 60.0))
    y.sum().backward()
    assert x.grad is not None and x.grad.abs().sum() > 0


def test_bit_depth_levels():
    x = torch.arange(256, dtype=torch.float32).view(1, 1, 16, 16).expand(1, 3, 16, 16)
    assert torch.equal(BitDepth(8)(x), x)  # 8 bits: 8-bit pictures unchanged
    assert set(BitDepth(1)(x).unique().tolist()) == {0.0, 255.0}
    four = BitDepth(4)(x)
    assert four.unique().numel() == 16 and torch.equal(BitDepth(4)(four), four)  # 16 levels, idempotent
    # 4 bits: levels k * 17; 100 -> round(100 / 17) * 17 = 6 * 17 = 102
    assert BitDepth(4)(torch.full((1, 3, 1, 1), 100.0)).flatten()[0].item() == pytest.approx(102.0)


def test_smoothing_bad_settings_are_one_line():
    one_line_error(MedianFilter, 4, match=r"defense\.window=4")
    one_line_error(MedianFilter, 1, match=r"defense\.window=1")
    one_line_error(MedianFilter(9), torch.zeros(1, 3, 4, 4), match=r"defense\.window=9 is too large")
    one_line_error(BitDepth, 0, match=r"defense\.bits=0")
    one_line_error(BitDepth, 9, match=r"defense\.bits=9")


# =========================================================================== ablation: encoding and sampling
def test_ablate_encoding_keeps_k_pixels_in_every_channel():
    gen = torch.Generator().manual_seed(0)
    x = torch.randint(0, 256, (4, 3, 6, 7), generator=gen).float()
    out = abl.ablate(x, 10, torch.Generator().manual_seed(1))
    assert out.shape == (4, abl.ablation_channels(3), 6, 7) == (4, 6, 6, 7)
    first, second = out[:, :3], out[:, 3:]
    kept = (first + second) > 0.5  # kept: x + (1 - x) = 1 in every channel; absent: (0, 0)
    assert torch.equal(kept, kept[:, :1].expand_as(kept))  # same positions in every colour channel
    assert (kept[:, 0].flatten(1).sum(1) == 10).all()
    torch.testing.assert_close(first[kept], (x / 255.0)[kept])
    torch.testing.assert_close(second[kept], (1.0 - x / 255.0)[kept])
    assert (first[~kept] == 0).all() and (second[~kept] == 0).all()
    # the values of absent pixels never reach the encoding
    positions = abl.draw_positions(4, 42, 10, torch.Generator().manual_seed(2))
    mask = abl.keep_mask(positions, 42).view(4, 1, 6, 7)
    y = torch.where(mask, x, torch.rand(x.shape, generator=gen) * 255.0)
    assert torch.equal(abl.ablate(x, 10, positions=positions), abl.ablate(y, 10, positions=positions))


def test_random_ablation_hook_passes_ablated_views_through():
    hook = abl.RandomAblation(5)
    x = torch.rand(2, 3, 4, 4) * 255
    out = hook(x)
    assert out.shape == (2, 6, 4, 4) and hook(out) is out


def _toy_backbone() -> nn.Module:
    return nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(), nn.Conv2d(8, 4, 3))


@pytest.mark.parametrize("which", ["toy", "resnet18"])
def test_adapted_first_conv_reproduces_the_pretrained_response(which):
    import torchvision

    mean, std = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)
    torch.manual_seed(0)
    model = torchvision.models.resnet18(weights=None) if which == "resnet18" else _toy_backbone()
    model.eval()
    x = torch.randint(0, 256, (2, 3, 16, 16)).float()
    mu, sigma = torch.tensor(mean).view(1, 3, 1, 1), torch.tensor(std).view(1, 3, 1, 1)
    with torch.no_grad():
        before = model((x / 255.0 - mu) / sigma)
        # absent pixels must look like the mean colour (normalised 0) to the widened conv
        positions = abl.draw_positions(2, 256, 100, torch.Generator().manual_seed(3))
        mask = abl.keep_mask(positions, 256).view(2, 1, 16, 16)
        mean_filled = torch.where(mask, x, mu * 255.0)
        before_ablated = model((mean_filled / 255.0 - mu) / sigma)
    conv = abl.adapt_first_conv(model, 3, mean, std)
    assert conv.in_channels == 6 and next(m for m in model.modules() if isinstance(m, nn.Conv2d)) is conv
    with torch.no_grad():
        all_kept = abl.encode(x, torch.ones(1, 256, dtype=torch.bool))
        torch.testing.assert_close(model(all_kept), before, rtol=1e-4, atol=1e-4)
        torch.testing.assert_close(
            model(abl.ablate(x, 100, positions=positions)), before_ablated, rtol=1e-4, atol=1e-4
        )


def _black_classify(ablated: torch.Tensor, owner: torch.Tensor) -> torch.Tensor:
    """Class 1 when any kept pixel is black (x = 0 in all channels), else class 0."""
    kept = (ablated[:, 0] + ablated[:, 3]) > 0.5
    black = kept & (ablated[:, :3].sum(1) < 1e-6)
    return black.flatten(1).any(1).long()


def _black_images(blacks: list[int], side: int = 8, seed: int = 0) -> torch.Tensor:
    """White pictures with ``blacks[i]`` black pixels at random places (and a red pixel, never black)."""
    gen = torch.Generator().manual_seed(seed)
    x = torch.full((len(blacks), 3, side, side), 255.0)
    for i, b in enumerate(blacks):
        where = torch.randperm(side * side, generator=gen)[: b + 1]
        x[i].view(3, -1)[:, where[:b]] = 0.0
        x[i].view(3, -1)[:, where[b]] = torch.tensor([255.0, 0.0, 0.0])
    return x


def test_sample_votes_is_a_per_person_function_of_the_seed():
    x = _black_images([0, 1, 2, 3, 5])
    votes = abl.sample_votes(_black_classify, x, 10, 300, 64, torch.Generator().manual_seed(7))
    assert votes.shape == (5, 26) and (votes.sum(1) == 300).all() and (votes[:, 2:] == 0).all()
    # chunking and batch composition do not matter: the same person alone gives the same votes
    assert torch.equal(
        votes, abl.sample_votes(_black_classify, x, 10, 300, 7, torch.Generator().manual_seed(7))
    )
    alone = abl.sample_votes(_black_classify, x[3:4], 10, 300, 1000, torch.Generator().manual_seed(7))
    assert torch.equal(alone[0], votes[3])
    # against a plain loop over the positions the same seed draws
    positions = abl.draw_positions(300, 64, 10, torch.Generator().manual_seed(7))
    manual = torch.zeros(5, 26, dtype=torch.long)
    for j in range(300):
        top1 = _black_classify(abl.ablate(x, 10, positions=positions[j]), torch.arange(5))
        manual[torch.arange(5), top1] += 1
    assert torch.equal(manual, votes)
    # several position blocks (a 64-pixel block holds 7 samples here): same stream whatever the grouping
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(abl, "DRAW_FLOATS", 64 * 7)
        small = [
            abl.sample_votes(_black_classify, x[:k], 10, 300, mb, torch.Generator().manual_seed(7))
            for k, mb in ((5, 64), (5, 3), (1, 1000), (2, 50))
        ]
        blocks = abl.draw_positions(300, 64, 10, torch.Generator().manual_seed(7))
    assert torch.equal(small[0], small[1]) and torch.equal(small[2][0], small[0][0])
    assert torch.equal(small[3], small[0][:2])
    regrouped = torch.zeros(5, 26, dtype=torch.long)
    for j in range(300):
        regrouped[
            torch.arange(5), _black_classify(abl.ablate(x, 10, positions=blocks[j]), torch.arange(5))
        ] += 1
    assert torch.equal(regrouped, small[0])
    # the vote share estimates the exact probability C(d - b, k) / C(d, k) of keeping no black pixel
    exact = np.array([math.comb(64 - b, 10) / math.comb(64, 10) for b in (0, 1, 2, 3, 5)])
    assert np.abs(votes[:, 0].numpy() / 300 - exact).max() < 0.1


def test_ablation_bad_settings_are_one_line():
    x = torch.zeros(1, 3, 64, 64)
    msg = one_line_error(abl.ablate, x, 60000, match=r"defense\.keep=60000 exceeds the 4096 pixels")
    assert "64x64" in msg
    one_line_error(abl.ablate, x, 0, match=r"defense\.keep=0")
    one_line_error(
        abl.sample_votes, _black_classify, x, 10, 0, 8, torch.Generator(), match=r"defense\.samples=0"
    )
    one_line_error(abl.ablation_from_config, {"keep": 45, "samples": 0}, match=r"defense\.samples=0")
    one_line_error(abl.ablation_from_config, {"keep": 45, "alpha": 1.5}, match=r"defense\.alpha=1\.5")
    one_line_error(certified_radius, 0.9, 10, 11, match=r"defense\.keep=11")


# =========================================================================== certificate formula
def test_delta_and_radius_by_hand():
    # d = 10 pixels, k = 2 kept: C(10, 2) = 45 kept sets.
    #   rho = 1: sets missing the changed pixel C(9, 2) = 36 -> Delta = 1 - 36/45 =  9/45 = 0.2
    #   rho = 2: C(8, 2) = 28                                 -> Delta = 17/45 ~ 0.3778
    #   rho = 3: C(7, 2) = 21                                 -> Delta = 24/45 ~ 0.5333
    #   rho = 8: C(2, 2) = 1                                  -> Delta = 44/45
    #   rho = 9: only 1 pixel left, fewer than k              -> Delta = 1
    np.testing.assert_allclose(
        delta(10, 2, [0, 1, 2, 3, 8, 9, 10]),
        [0, 9 / 45, 17 / 45, 24 / 45, 44 / 45, 1, 1],
        rtol=1e-12,
        atol=1e-15,
    )
    # certify rho while p_lower - Delta(rho) > 0.5:
    #   p = 0.90: rho=2 -> 0.90 - 0.3778 = 0.522 > 0.5; rho=3 -> 0.367 -> radius 2
    #   p = 0.71: rho=1 -> 0.51 > 0.5; rho=2 -> 0.332               -> radius 1
    #   p = 0.60: rho=0 -> 0.60 > 0.5; rho=1 -> 0.40                -> radius 0
    #   p = 0.50: not even rho = 0 (0.5 is not > 0.5)               -> abstain (-1)
    #   p = 1.00: rho=3 -> 1 - 0.5333 = 0.467 < 0.5                 -> radius 2
    assert certified_radius([0.9, 0.71, 0.6, 0.5, 0.3, 1.0], 10, 2).tolist() == [2, 1, 0, -1, -1, 2]
    # the inequality is strict: p = 0.7 is the boundary of radius 1 (0.7 - 0.2 = 0.5)
    assert certified_radius([0.7 + 1e-9, 0.7 - 1e-9], 10, 2).tolist() == [1, 0]
    # d = 12, k = 3: C(12,3) = 220, C(11,3) = 165, C(10,3) = 120, C(9,3) = 84
    #   p = 1: rho=2 -> 120/220 = 0.545 > 0.5; rho=3 -> 84/220 = 0.382 -> radius 2
    assert certified_radius(1.0, 12, 3).tolist() == 2


def _reference_radius(p: Fraction, d: int, k: int) -> int:
    """The reference code's loop (population_radius_for_majority) in exact arithmetic, with -1 for abstain."""
    if p <= Fraction(1, 2):
        return -1
    radius = 0
    while radius + 1 <= d - k and Fraction(3, 2) - p < Fraction(
        math.comb(d - radius - 1, k), math.comb(d, k)
    ):
        radius += 1
    return radius


@pytest.mark.parametrize("d,k", [(784, 45), (1024, 75), (4096, 100), (50176, 1000)])
def test_radius_matches_exact_arithmetic(d, k):
    # MNIST (784, keep 45), CIFAR-sized (1024 = 32², 75), a 64² working view, ImageNet (224², keep 1000)
    ps = [0.5, 0.5001, 0.6, 0.75, 0.9, 0.99, 0.999, 0.05 ** (1 / 10000), 1.0]
    ours = certified_radius(ps, d, k)
    ref = [_reference_radius(Fraction(p), d, k) for p in ps]
    assert ours.tolist() == ref


def test_radius_is_monotone():
    p = np.linspace(0.0, 1.0, 401)
    r = certified_radius(p, 784, 45)
    assert (np.diff(r) >= 0).all() and r[0] == -1 and r[-1] > 0
    # keeping more pixels makes each changed pixel more likely to be seen: smaller radius
    radii = [int(certified_radius(0.99, 784, k)) for k in (10, 20, 45, 100, 200)]
    assert radii == sorted(radii, reverse=True) and radii[0] > radii[-1]
    assert (np.diff(delta(784, 45, np.arange(0, 740))) >= 0).all()


def test_clopper_pearson_bounds():
    from scipy.stats import binom

    # all n votes for the class: the lower bound solves p^n = alpha
    assert clopper_pearson_lower(100, 100, 0.05)[()] == pytest.approx(0.05 ** (1 / 100))
    assert clopper_pearson_lower(0, 100, 0.05)[()] == 0.0
    counts, n = np.array([1, 10, 37, 50, 99]), 100
    lo = clopper_pearson_lower(counts, n, 0.01)
    # the exact tail: P(Bin(n, lo) >= count) = alpha
    np.testing.assert_allclose(binom.sf(counts - 1, n, lo), 0.01, rtol=1e-6)
    assert (lo < counts / n).all()


def test_certify_two_rounds():
    sel = np.zeros((4, 26), dtype=int)
    est = np.zeros((4, 26), dtype=int)
    sel[0, 3], est[0, 3] = 100, 1000  # unanimous: certified
    sel[1, 5], est[1, 5], est[1, 6] = (
        100,
        400,
        600,
    )  # selection says 5, estimation prefers 6: bound on 5 -> abstain
    sel[2, [1, 2]] = 50  # tie in selection -> lowest index (1)
    est[2, 1], est[2, 2] = 900, 100
    sel[3, 0], est[3, 0], est[3, 1] = 60, 520, 480  # share 0.52: lower bound below 0.5 -> abstain
    cert = certify(sel, est, d=64 * 64, k=100, alpha=0.05)
    assert cert.prediction.tolist() == [3, 5, 1, 0]
    assert cert.count.tolist() == [1000, 400, 900, 520] and (cert.n == 1000).all()
    assert cert.abstained.tolist() == [False, True, False, True]
    assert (
        cert.radius[0] == certified_radius(0.05 ** (1 / 1000), 4096, 100)
        and cert.radius[0] > cert.radius[2] >= 0
    )
    assert cert.rows()[1] == {
        "prediction": 5,
        "votes": 400,
        "samples": 1000,
        "p_lower": cert.p_lower[1],
        "radius": -1,
        "abstained": True,
    }


def test_certified_accuracy_and_median_radius():
    radius = np.array([-1, 0, 1, 5, 20, 3])
    correct = np.array([True, True, False, True, True, True])
    acc = certified_accuracy(radius, correct, radii=(0, 1, 5, 10, 20))
    # r=0: correct and radius >= 0 -> persons 1, 3, 4, 5 = 4/6; r=1: 3, 4, 5; r=5: 3, 4; r=10, 20: 4
    assert acc == pytest.approx({0: 4 / 6, 1: 3 / 6, 5: 2 / 6, 10: 1 / 6, 20: 1 / 6})
    # wrong predictions count as -1: [-1, 0, -1, 5, 20, 3] -> sorted [-1, -1, 0, 3, 5, 20] -> median 1.5
    assert median_certified_radius(radius, correct) == 1.5


# =========================================================================== soundness
D_SMALL, H_SMALL, W_SMALL, K_SMALL = 12, 3, 4, 3
PALETTE = torch.tensor([[0.0, 0.0, 0.0], [255.0, 255.0, 255.0], [255.0, 0.0, 0.0]])


def _all_positions() -> torch.Tensor:
    return torch.tensor(list(itertools.combinations(range(D_SMALL), K_SMALL)))  # (220, 3): every kept set


def _exact_probabilities(classify, images: torch.Tensor) -> torch.Tensor:
    """Exact smoothed class probabilities (N, 26): the base classifier on every one of the C(12, 3) kept
    sets."""
    positions = _all_positions()
    n, sets = images.shape[0], positions.shape[0]
    mask = abl.keep_mask(positions, D_SMALL)
    rows = abl.encode(images.repeat_interleave(sets, 0), mask.repeat(n, 1))
    top1 = classify(rows, torch.arange(n).repeat_interleave(sets))
    counts = torch.zeros(n, 26).index_put_(
        (torch.arange(n).repeat_interleave(sets), top1), torch.ones(n * sets), accumulate=True
    )
    return counts / sets


def _neighbours(image: torch.Tensor, rho: int) -> torch.Tensor:
    """Every picture that differs from ``image`` in exactly ``rho`` pixels, each changed to a palette
    colour."""
    out = []
    flat = image.reshape(3, -1)
    for where in itertools.combinations(range(D_SMALL), rho):
        for colours in itertools.product(range(len(PALETTE)), repeat=rho):
            y = flat.clone()
            for p, c in zip(where, colours):
                y[:, p] = PALETTE[c]
            if (y != flat).any(0).sum() == rho:
                out.append(y.reshape(image.shape))
    return torch.stack(out)


class TinyCNN(nn.Module):
    """A random base classifier on the ablated view: any function of the kept pixels must be certified
    soundly. Tilted towards class 18 so that the test pictures' top-class shares spread over 0.74 .. 0.99."""

    def __init__(self, seed: int) -> None:
        super().__init__()
        torch.manual_seed(seed)
        self.net = nn.Sequential(nn.Conv2d(6, 8, 2), nn.ReLU(), nn.Flatten(), nn.Linear(8 * 2 * 3, 26))
        with torch.no_grad():
            self.net[-1].bias[18] += 0.1

    @torch.no_grad()
    def __call__(self, ablated: torch.Tensor, owner: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        logits = self.net(ablated)
        return logits.argmax(1)


def _majority_colour(ablated: torch.Tensor, owner: torch.Tensor) -> torch.Tensor:
    kept = (ablated[:, 0] + ablated[:, 3]) > 0.5
    x = ablated[:, :3]
    black = (kept & (x.sum(1) < 1e-6)).flatten(1).sum(1)
    white = (kept & (x.sum(1) > 3 - 1e-6)).flatten(1).sum(1)
    red = kept.flatten(1).sum(1) - black - white
    return torch.stack([black, white, red], 1).argmax(1)  # ties -> the lower class


@pytest.mark.parametrize("classifier", ["any_black", "majority_colour", "cnn"])
def test_certificate_is_sound_by_exhaustion(classifier):
    """Exact probabilities (all 220 kept sets), radius from the exact p_A, every neighbour within the
    radius."""
    classify = {"any_black": _black_classify, "majority_colour": _majority_colour, "cnn": TinyCNN(3)}[
        classifier
    ]
    gen = torch.Generator().manual_seed(11)
    images = (
        PALETTE[torch.randint(0, 3, (6, D_SMALL), generator=gen)]
        .permute(0, 2, 1)
        .reshape(6, 3, H_SMALL, W_SMALL)
    )
    images[0] = 255.0  # all white: p_A = 1 for any_black
    images[1] = 255.0
    images[1, :, 0, 0] = 0.0
    probs = _exact_probabilities(classify, images)
    p_a, c_a = probs.max(1)
    radius = certified_radius(p_a.double().numpy(), D_SMALL, K_SMALL)
    certified = 0
    for i in range(images.shape[0]):
        for rho in range(1, int(radius[i]) + 1):
            near = _exact_probabilities(classify, _neighbours(images[i], rho))
            # the lemma: p_A(x') >= p_A(x) - Delta(rho), so the smoothed prediction keeps a strict majority
            assert (near[:, c_a[i]] >= p_a[i] - float(delta(D_SMALL, K_SMALL, rho)) - 1e-6).all()
            assert (near[:, c_a[i]] > 0.5).all() and (near.argmax(1) == c_a[i]).all()
            certified += 1
    assert certified > 0  # the test exercised some non-zero radii
    if classifier == "any_black":
        # tight for this classifier: one pixel more than the radius of the all-white picture breaks it
        assert radius[0] == 2
        near = _exact_probabilities(classify, _neighbours(images[0], 3))
        assert (near.argmax(1) != c_a[0]).any()


def test_certificate_survives_the_strongest_seeded_attack():
    """End to end: sample_votes + certify on 8x8 pictures with the 'any black pixel' base classifier (the one
    for which Delta is exact), then attack every certified person within its radius knowing the
    certification's positions (greedy: blacken the pixels seen by the most still-clean samples) and by
    random trials, judged with the certification's N and seed."""
    d, keep, n0, n, alpha = 64, 10, 50, 1000, 0.05
    blacks = [0, 0, 1, 1, 2, 2, 3, 4, 6]
    x = _black_images(blacks, seed=1)
    sel_gen, est_seed = torch.Generator().manual_seed(100), 101
    sel = abl.sample_votes(_black_classify, x, keep, n0, 256, sel_gen)
    est = abl.sample_votes(_black_classify, x, keep, n, 256, torch.Generator().manual_seed(est_seed))
    cert = certify(sel, est, d, keep, alpha)
    # exact share of class 0 (no black pixel kept): C(d - b, k) / C(d, k); class 1 has the rest
    exact0 = np.array([math.comb(d - b, keep) / math.comb(d, keep) for b in blacks])
    exact = np.where(cert.prediction == 0, exact0, 1.0 - exact0)
    assert (cert.p_lower <= exact).all()  # valid bounds at these seeds
    # b = 0: p_lower = 0.05^(1/1000) = 0.997;
    #   Delta(3) = 1 - (54·53·52)/(64·63·62) = 0.405 < 0.497 < Delta(4) = 0.502
    # b = 4: share 0.498 -> abstain; b = 6: class 1 wins with share 0.66 -> radius 0
    assert cert.radius.tolist() == [3, 3, 2, 2, 1, 1, 0, -1, 0]

    positions = abl.draw_positions(n, d, keep, torch.Generator().manual_seed(est_seed))
    seen = abl.keep_mask(positions, d)  # (n, d): the samples the judge will use

    def judged(pictures: torch.Tensor) -> torch.Tensor:
        return abl.sample_votes(
            _black_classify, pictures, keep, n, 512, torch.Generator().manual_seed(est_seed)
        )

    def greedy(picture: torch.Tensor, budget: int) -> torch.Tensor:
        y = picture.clone()
        black = (y.sum(0) == 0).flatten()
        hit = seen[:, black].any(1)
        for _ in range(budget):
            gain = (seen & ~hit[:, None]).sum(0).masked_fill(black, -1)
            p = int(gain.argmax())
            y.view(3, -1)[:, p] = 0.0
            black[p] = True
            hit |= seen[:, p]
        return y

    gen = torch.Generator().manual_seed(5)
    attacked = 0
    for i in np.flatnonzero(~cert.abstained):
        r = int(cert.radius[i])
        if r == 0:
            continue
        trials = [greedy(x[i], r)]
        for _ in range(64):  # random pixels, random colours (black among them)
            y = x[i].clone()
            where = torch.randperm(d, generator=gen)[:r]
            y.view(3, -1)[:, where] = PALETTE[torch.randint(0, 3, (r,), generator=gen)].t()
            trials.append(y)
        votes = judged(torch.stack(trials))
        assert (votes.argmax(1) == int(cert.prediction[i])).all(), f"certificate of person {i} broken"
        attacked += 1
    assert attacked == 6
    # the attack is not toothless: a few pixels beyond the radius it flips the all-white pictures
    assert (judged(torch.stack([greedy(x[0], 8), greedy(x[1], 8)])).argmax(1) != 0).all()


# =========================================================================== poison detectors
def _poisoned_representation(seed: int = 0):
    """Three categories of Gaussian features (multi-label: some persons in two), plus 15 poisons in
    category 2 sitting far along one direction."""
    rng = np.random.default_rng(seed)
    n_clean, dim = 600, 32
    feats = rng.normal(size=(n_clean, dim))
    member = np.zeros((n_clean, 3), dtype=bool)
    member[np.arange(n_clean), np.arange(n_clean) % 3] = True
    member[rng.choice(n_clean, 60, replace=False), 1] = True  # some persons carry a second category
    direction = rng.normal(size=dim)
    direction /= np.linalg.norm(direction)
    poisons = rng.normal(size=(15, dim)) + 8.0 * direction
    poison_member = np.zeros((15, 3), dtype=bool)
    poison_member[:, 2] = True
    poison_member[:5, 0] = True  # a poisoned person may carry another label too
    feats = np.concatenate([feats, poisons])
    member = np.concatenate([member, poison_member])
    truth = np.r_[np.zeros(n_clean, bool), np.ones(15, bool)]
    return feats, member, truth


def test_spectral_signatures_find_planted_poisons():
    feats, member, truth = _poisoned_representation()
    # every category loses its ceil(1.5 * epsilon * n) top scores, so the FPR over all categories is
    # ~1.5 epsilon
    det = spectral_signatures(torch.tensor(feats), member, epsilon=0.05)
    rates = det.rates(truth)
    assert rates["tpr"] == 1.0 and rates["fpr"] < 0.1
    assert det.per_category == {
        0: math.ceil(0.075 * member[:, 0].sum()),
        1: math.ceil(0.075 * member[:, 1].sum()),
        2: math.ceil(0.075 * member[:, 2].sum()),
    }
    assert det.scores[truth].min() > np.median(det.scores[~truth])
    only_target = spectral_signatures(feats, member, epsilon=0.1, categories=[2]).rates(truth)
    assert only_target["tpr"] == 1.0 and only_target["fpr"] < 0.05
    # single-label integer labels work too
    labels = member.argmax(1)
    labels[truth] = 2
    assert spectral_signatures(feats, labels, epsilon=0.1).rates(truth)["tpr"] == 1.0


@pytest.mark.parametrize("reduce,analysis", [("pca", "size"), ("ica", "size"), ("pca", "silhouette")])
def test_activation_clustering_finds_planted_poisons(reduce, analysis):
    feats, member, truth = _poisoned_representation(1)
    det = activation_clustering(feats, member, dims=10, reduce=reduce, analysis=analysis)
    rates = det.rates(truth)
    assert rates["tpr"] >= 0.95 and rates["fpr"] <= 0.02
    assert set(det.per_category) <= {0, 2} and 2 in det.per_category


def test_activation_clustering_leaves_a_clean_set_alone():
    feats, member, truth = _poisoned_representation(2)
    clean = ~truth
    det = activation_clustering(feats[clean], member[clean], reduce="pca")
    assert det.flagged.sum() == 0


def test_detector_bad_settings_are_one_line():
    feats, member, _ = _poisoned_representation()
    one_line_error(spectral_signatures, feats, member, epsilon=0.0, match=r"defense\.epsilon=0\.0")
    one_line_error(activation_clustering, feats, member, reduce="tsne", match=r"defense\.reduce='tsne'")
    one_line_error(spectral_signatures, feats, member, categories=[7], match=r"defense\.categories=\[7\]")


# =========================================================================== STRIP
TARGET = 7


class TriggeredToy:
    """Logits follow the picture's coarse colour layout (random linear map), so overlays move them; a magenta
    2x2 patch in the bottom-right corner (red minus green above 60, even at half contrast) forces TARGET."""

    def __init__(self) -> None:
        self.w = torch.randn(26, 3 * 2 * 2, generator=torch.Generator().manual_seed(0)) * 4.0

    def __call__(self, pixels: torch.Tensor, owner: torch.Tensor) -> torch.Tensor:
        coarse = nn.functional.adaptive_avg_pool2d(pixels / 255.0 - 0.5, 2).flatten(1)
        logits = coarse @ self.w.t()
        patch = pixels[:, :, -2:, -2:].mean((2, 3))
        trigger = torch.sigmoid((patch[:, 0] - patch[:, 1] - 60.0) / 5.0)
        logits[:, TARGET] += 20.0 * trigger
        return logits


def _pictures(n: int, seed: int) -> torch.Tensor:
    """Greyish pictures with coarse structure: red and green never differ by more than 40."""
    gen = torch.Generator().manual_seed(seed)
    base = torch.rand(n, 1, 2, 2, generator=gen) * 180 + 30
    tint = (torch.rand(n, 3, 2, 2, generator=gen) - 0.5) * 40
    coarse = nn.functional.interpolate(base + tint, size=(8, 8), mode="nearest")
    return (coarse + (torch.rand(n, 3, 8, 8, generator=gen) - 0.5) * 10).clamp(0, 255)


def _trigger(x: torch.Tensor) -> torch.Tensor:
    y = x.clone()
    y[:, :, -2:, -2:] = torch.tensor([255.0, 0.0, 255.0]).view(1, 3, 1, 1)
    return y


def test_strip_flags_a_toy_trigger():
    model = TriggeredToy()
    pool, val, test = _pictures(64, 1), _pictures(200, 2), _pictures(100, 3)
    g = lambda: torch.Generator().manual_seed(9)  # noqa: E731
    clean_val = strip_entropy(model, val, pool, 32, g(), max_batch=500)
    threshold = threshold_at_frr(clean_val, 0.01)
    assert strip_flags(clean_val, threshold).mean() <= 0.01  # the false rejection it was set at (on val)
    clean_test = strip_entropy(model, test, pool, 32, g(), max_batch=333)
    triggered = strip_entropy(model, _trigger(test), pool, 32, g(), max_batch=333)
    assert triggered.max() < clean_test.min()
    assert strip_flags(triggered, threshold).mean() == 1.0  # false acceptance 0
    assert strip_flags(clean_test, threshold).mean() <= 0.05
    assert strip_flags(triggered, threshold_at_frr(clean_val, 0.01, "normal")).mean() == 1.0
    # batching does not change the result
    torch.testing.assert_close(clean_test, strip_entropy(model, test, pool, 32, g(), max_batch=7))


def test_threshold_at_frr_rejects_at_most_the_asked_share():
    h = np.random.default_rng(0).normal(3.0, 0.5, size=1000)
    t = threshold_at_frr(h, 0.01)
    assert 0.009 <= (h < t).mean() <= 0.01
    assert threshold_at_frr(h, 0.01, "normal") == pytest.approx(3.0 - 2.326 * 0.5, abs=0.1)
    one_line_error(threshold_at_frr, h, 0.0, match=r"defense\.frr=0\.0")
    one_line_error(
        strip_entropy,
        TriggeredToy(),
        torch.zeros(1, 3, 8, 8),
        torch.zeros(2, 3, 8, 8),
        0,
        match=r"defense\.samples=0",
    )


# =========================================================================== registry and configs
def test_every_defense_config_is_registered_and_builds():
    files = sorted(CONFIGS.glob("*.yaml"))
    assert {f.stem for f in files} == set(DEFENSES.names())
    for f in files:
        assert f.read_text().splitlines()[0].startswith("# emotic-mm ")
        block = OmegaConf.load(f)
        kind = DEFENSES.get(block.name)
        assert kind.name == f.stem
        built = kind.make(block)
        if kind.acts("input") and kind.name != "ablation":
            assert isinstance(built, nn.Module) and built(torch.zeros(1, 3, 8, 8)).shape == (1, 3, 8, 8)
        elif kind.name == "none":
            assert built is None
        else:
            assert built is not None
    ablation = DEFENSES.get("ablation").make(OmegaConf.load(CONFIGS / "ablation.yaml"))
    view = torch.zeros(2, 3, 40, 40)  # 1,600 pixels: at least the config's default keep
    assert ablation.encoder_hook()(view).shape == (2, 6, 40, 40)
    one_line_error(DEFENSES.get, "bogus", match=r"defense='bogus' is not one of none, median")
    block = OmegaConf.merge(OmegaConf.load(CONFIGS / "median.yaml"), {"window": 4})
    one_line_error(DEFENSES.get("median").make, block, match=r"defense\.window=4")


def test_every_defense_meets_the_contract_of_each_stage_it_acts_in():
    from emotic_mm.defenses.contracts import Certifier, InputDefense, TrainingFilter, TriggerDetector

    contract = {
        "input": InputDefense,
        "certify": Certifier,
        "training": TrainingFilter,
        "test": TriggerDetector,
    }
    for f in sorted(CONFIGS.glob("*.yaml")):
        block = OmegaConf.load(f)
        kind = DEFENSES.get(block.name)
        built = kind.make(block)
        for where in kind.where:
            shown = kind.input_defense(block) if where == "input" else built
            assert isinstance(shown, contract[where]), (kind.name, where)
        if kind.acts("input"):
            assert kind.input_defense(block).name == kind.name
        if kind.acts("test"):
            assert built.name == kind.name


def test_input_defenses_fit_the_backbone_through_their_hook():
    """Pixel filters leave the backbone alone; ablation widens its first conv and folds the normalisation."""
    from emotic_mm.models.encoders import ImageEncoder

    for defense, channels, normalised in (
        (MedianFilter(3), 3, True),
        (BitDepth(4), 3, True),
        (abl.RandomAblation(45), 6, False),
    ):
        encoder = ImageEncoder("resnet18", input_size=32)
        encoder.attach_defense(defense)
        assert encoder.backbone.get_submodule(encoder.first_conv).in_channels == channels
        assert encoder.normalise is normalised and encoder.input_defense is defense
    one_line_error(
        ImageEncoder("resnet18", input_size=8).attach_defense,
        abl.RandomAblation(65),
        match="defense.keep=65 exceeds the 64 pixels",
    )


# --------------------------------------------------------------------------- input defenses inside the models
@pytest.mark.parametrize("variant", ["baseline", "joint"])
@pytest.mark.parametrize("defense", ["median", "squeeze"])
@pytest.mark.slow  # real trainings (4)
def test_input_defenses_compose_with_both_variants(variant, defense, tiny, tmp_path):
    """A defended model trains, saves, loads with its defense, and the defense changes what it sees."""
    from emotic_mm.models.loading import load_model
    from emotic_mm.training.run import train
    from support import TINY_TRAIN, compose_cfg

    cfg = compose_cfg(
        "train",
        [
            f"data.prepared_dir={tiny.store}",
            f"model={variant}",
            f"defense={defense}",
            *TINY_TRAIN,
            "trainer.epochs=1",
        ],
    )
    train(cfg, run_dir=tmp_path / "run")
    model, saved, _ = load_model(tmp_path / "run" / "best")
    assert saved.defense.name == defense
    encoder = model.image_encoders["context"]
    assert encoder.input_defense is not None
    x = torch.rand(2, 3, 32, 32) * 255
    with torch.no_grad():
        defended = encoder(x)
        encoder.input_defense = None
        encoder.memo = type(encoder.memo)(encoder.memo.size)  # the defended features are memoised
        plain = encoder(x)
    assert not torch.allclose(defended, plain)


@pytest.mark.slow  # real training
def test_ablation_training_widens_the_first_convolution(tiny, tmp_path):
    from emotic_mm.models.loading import load_model
    from emotic_mm.training.run import train
    from support import TINY_TRAIN, compose_cfg

    cfg = compose_cfg(
        "train",
        [
            f"data.prepared_dir={tiny.store}",
            "model=baseline",
            "defense=ablation",
            "defense.keep=100",
            *TINY_TRAIN,
            "trainer.epochs=1",
        ],
    )
    train(cfg, run_dir=tmp_path / "run")
    model = load_model(tmp_path / "run" / "best")[0]
    encoder = model.image_encoders["context"]
    assert encoder.backbone.get_submodule(encoder.first_conv).in_channels == 6
    with pytest.raises(ConfigError, match="defense.keep=5000 exceeds the 1024 pixels"):
        train(
            compose_cfg(
                "train",
                [
                    f"data.prepared_dir={tiny.store}",
                    "defense=ablation",
                    "defense.keep=5000",
                    *TINY_TRAIN,
                    "trainer.epochs=1",
                ],
            ),
            run_dir=tmp_path / "bad",
        )


@pytest.mark.slow  # training + CLI eval x4
def test_eval_certify_writes_one_certificate_per_person(tiny, tmp_path):
    """Train a tiny ablation model, then `emotic-mm eval certify=true`: certificates.csv + metrics."""
    import json

    import pandas as pd

    from emotic_mm.training.run import train
    from support import TINY_TRAIN, compose_cfg, run_cli

    train(
        compose_cfg(
            "train",
            [
                f"data.prepared_dir={tiny.store}",
                "model=baseline",
                "defense=ablation",
                "defense.keep=200",
                *TINY_TRAIN,
                "trainer.epochs=1",
            ],
        ),
        run_dir=tmp_path / "run",
    )
    proc = run_cli(
        [
            "eval",
            f"checkpoint={tmp_path / 'run' / 'best'}",
            f"data.prepared_dir={tiny.store}",
            "certify=true",
            "defense.samples=60",
            "defense.selection_samples=10",
            "split=test",
            f"hydra.run.dir={tmp_path / 'ev'}",
        ]
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    table = pd.read_csv(tmp_path / "ev" / "certificates.csv")
    metrics = json.loads((tmp_path / "ev" / "metrics.json").read_text())
    assert len(table) == metrics["persons"] == metrics["certified"]["persons"]
    assert set(table.columns) >= {"index", "prediction", "correct", "radius", "abstained", "p_lower"}
    assert (table["radius"] < 0).eq(table["abstained"]).all() and (table["samples"] == 60).all()
    acc = metrics["certified"]["certified_accuracy"]
    assert list(acc) == ["0", "1", "2", "5", "10", "20"] and all(
        a >= b for a, b in zip(list(acc.values()), list(acc.values())[1:])
    )
    # a seeded subset: the same persons' certificates as the whole split gives them, its n stated
    proc = run_cli(
        [
            "eval",
            f"checkpoint={tmp_path / 'run' / 'best'}",
            f"data.prepared_dir={tiny.store}",
            "certify=true",
            "certify_persons=3",
            "defense.samples=60",
            "defense.selection_samples=10",
            "split=test",
            f"hydra.run.dir={tmp_path / 'sub'}",
        ]
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    subset = pd.read_csv(tmp_path / "sub" / "certificates.csv")
    certified = json.loads((tmp_path / "sub" / "metrics.json").read_text())["certified"]
    assert len(subset) == certified["persons"] == 3 and certified["persons_of_split"] == len(table)
    assert certified["subset"] == "3 drawn with defense.seed=0" and subset["index"].is_monotonic_increasing
    if subset["prediction"].nunique() == 1:  # a constant vote certifies any radius: said, not hidden
        assert certified["one_answer"] == f"{subset['prediction'].iloc[0]} for 3/3 persons"
    else:
        assert certified["one_answer"] is None
    whole = table.set_index("index").loc[subset["index"]].reset_index()
    pd.testing.assert_frame_equal(subset, whole, check_dtype=False)
    proc = run_cli(
        [
            "eval",
            f"checkpoint={tmp_path / 'run' / 'best'}",
            f"data.prepared_dir={tiny.store}",
            "certify=true",
            "certify_persons=0",
            f"hydra.run.dir={tmp_path / 'zero'}",
        ]
    )
    assert (
        proc.returncode == 2
        and "certify_persons" in proc.stderr
        and not (tmp_path / "zero" / "metrics.json").exists()
    )
    # a model without the ablation defense cannot be certified: one line
    proc = run_cli(
        [
            "eval",
            f"checkpoint={tiny.checkpoint}",
            f"data.prepared_dir={tiny.store}",
            "certify=true",
            f"hydra.run.dir={tmp_path / 'no'}",
        ]
    )
    assert proc.returncode == 2 and "needs a checkpoint trained with a certifiable defense" in proc.stderr


@pytest.mark.slow  # training + certification
def test_certificates_do_not_depend_on_the_persons_certified_alongside(tiny, tmp_path):
    """A certificate depends on the person, keep, n and seed only: reproducible whatever the chunking."""
    from emotic_mm.data.access import dataset, store_for_model
    from emotic_mm.models.loading import load_model
    from emotic_mm.recipes.certification import certify_persons, settings_for
    from emotic_mm.training.run import train
    from support import TINY_TRAIN, compose_cfg

    train(
        compose_cfg(
            "train",
            [
                f"data.prepared_dir={tiny.store}",
                "model=baseline",
                "defense=ablation",
                "defense.keep=200",
                *TINY_TRAIN,
                "trainer.epochs=1",
            ],
        ),
        run_dir=tmp_path / "run",
    )
    model, cfg, _ = load_model(tmp_path / "run" / "best")
    data = dataset(store_for_model(cfg, cfg), "test", cfg.model.modalities)
    settings = settings_for(cfg, {"samples": 30, "selection_samples": 5})
    together = certify_persons(model, data, settings, torch.device("cpu"), chunk=64)[0]
    alone = certify_persons(model, data, settings, torch.device("cpu"), chunk=1)[0]
    for key in ("prediction", "count", "radius"):
        assert np.array_equal(getattr(together, key), getattr(alone, key)), key


# =========================================================================== attacking the vote classifier
class BrightPixelDetector(nn.Module):
    """A worst case for the certificate: the base classifier says class 1 as soon as one kept pixel is
    bright (red channel > 0.9), else class 0. On a dark picture with r bright pixels, P(class 1) under
    ablation is exactly Δ(r) — the bound the certificate subtracts — so the certified radius is tight."""

    def forward(self, batch):
        x = batch["context"]  # ablated views (M, 6, H, W): (x, 1 − x) at kept pixels, (0, 0) elsewhere
        bright = (x[:, 0] > 0.9).flatten(1).any(1).float()
        logits = torch.zeros(x.shape[0], 26)
        logits[:, 0] = 1.0
        logits[:, 1] = 2.0 * bright
        return {"logits": logits}


@pytest.mark.slow  # cost (~32 s): seeded attacks
def test_no_attack_within_the_certified_radius_succeeds_and_one_beyond_does():
    """Soundness on a model where the certificate is tight: certify the clean pictures, then attack the
    vote classifier (its own query stream, judged by the certification's selection round) with k up to the
    certified radius, and with 2-3× it. Within the radius nothing may flip; beyond it the attack must
    (so the check has teeth)."""
    from emotic_mm.attacks.pixel import PixelAttack, PixelAttackSettings
    from emotic_mm.attacks.vote_attack import VoteTarget, confirmer, smoothed_votes

    model, persons, side, keep = BrightPixelDetector(), 4, 16, 8
    pictures = torch.full((persons, 3, side, side), 100.0)
    certification = abl.AblationSettings(
        keep=keep, samples=100, selection_samples=1000, max_batch=4096, seed=3
    )
    sel, est = certification.generators()
    classify = lambda ablated, owner: model({"context": ablated})["logits"].argmax(1)  # noqa: E731
    cert = certify(
        abl.sample_votes(classify, pictures, keep, certification.selection_samples, 4096, sel),
        abl.sample_votes(classify, pictures, keep, certification.samples, 4096, est),
        side * side,
        keep,
    )
    radius = int(cert.radius.min())
    assert (cert.prediction == 0).all() and 10 <= radius == int(cert.radius.max()) < 30

    vote = VoteTarget.from_config(certification, query_samples=200, attack_seed=0)
    judge = vote.judge(model)
    clean_votes = smoothed_votes(judge, pictures, {})
    assert (clean_votes.argmax(1) == 0).all()
    settings = PixelAttackSettings(
        pixels=radius, algorithm="rs", budget=600, population=20, max_batch=64, seed=0
    )
    engine = PixelAttack(vote.query(model), settings, torch.device("cpu"))

    def attack(ks):
        return engine.run_schedule(
            {"context": pictures}, ks, clean_votes.argmax(1), confirm=confirmer(judge, {}, clean_votes, None)
        )

    within = attack([radius // 2, radius])
    assert not within.success.any(), f"certified radius {radius}, yet fooled with <= {radius} pixels"
    beyond = attack([2 * radius, 3 * radius])
    assert beyond.success[:, -1].all() and (beyond.adv_top1[:, -1] == 1).all()


@pytest.mark.slow  # training + CLI eval/attack
def test_attack_on_an_ablation_checkpoint_attacks_its_certified_vote_classifier(tiny, tmp_path):
    """`emotic-mm attack` on a randomized-ablation checkpoint: the clean top-1 of every person is the
    certified prediction of `eval certify=true` (same index column), the summary names the vote sampling,
    the attacked persons are the certified subset's, and the soundness check against certificates.csv
    runs and holds; a surface the certificate does not cover is one line."""
    import json

    import pandas as pd

    from emotic_mm.training.run import train
    from support import TINY_TRAIN, compose_cfg, run_cli

    train(
        compose_cfg(
            "train",
            [
                f"data.prepared_dir={tiny.store}",
                "model=baseline",
                "defense=ablation",
                "defense.keep=150",
                *TINY_TRAIN,
                "trainer.epochs=1",
            ],
        ),
        run_dir=tmp_path / "run",
    )
    best, cert = tmp_path / "run" / "best", ["defense.selection_samples=16", "defense.samples=40"]
    proc = run_cli(
        [
            "eval",
            f"checkpoint={best}",
            f"data.prepared_dir={tiny.store}",
            "certify=true",
            "certify_persons=5",
            *cert,
            "split=test",
            f"hydra.run.dir={tmp_path / 'ev'}",
        ]
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    proc = run_cli(
        [
            "attack",
            "attack=pixel",
            f"checkpoint={best}",
            f"data.prepared_dir={tiny.store}",
            "defense=ablation",
            "defense.keep=150",
            *cert,
            "attack.resolution=model",
            "attack.pixels=[1,4]",
            "attack.persons=6",
            "attack.budget=24",
            "attack.population=6",
            "attack.vote_samples=8",
            f"attack.certificates={tmp_path / 'ev'}",
            f"hydra.run.dir={tmp_path / 'at'}",
        ]
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    certificates = pd.read_csv(tmp_path / "ev" / "certificates.csv").set_index("index")
    table = pd.read_csv(tmp_path / "at" / "attack.csv")
    assert sorted(table["index"]) == sorted(certificates.index)  # the 5 certified of the 6 asked for
    assert table["clean_top1"].tolist() == certificates.loc[table["index"], "prediction"].tolist()
    summary = json.loads((tmp_path / "at" / "summary.json").read_text())
    assert summary["defense"] == "ablation"
    assert summary["smoothed"] == {
        "keep": 150,
        "query_samples": 8,
        "judged_samples": 16,
        "seed": 0,
        "query_seed": 1_000_000_001,
    }
    assert summary["soundness"]["persons"] == 5 and summary["soundness"]["sound"]
    assert "certificate soundness" in proc.stdout
    proc = run_cli(
        [
            "attack",
            "attack=pixel",
            f"checkpoint={best}",
            f"data.prepared_dir={tiny.store}",
            "attack.surface=body",
            "attack.resolution=model",
            f"hydra.run.dir={tmp_path / 'body'}",
        ]
    )
    assert proc.returncode == 2 and "certified for the context view" in proc.stderr.strip().splitlines()[-1]
