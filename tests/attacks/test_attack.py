"""The batched pixel-attack engine on a tiny model whose decision one known pixel flips."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from emotic_mm.attacks.pixel import PixelAttack, PixelAttackSettings
from emotic_mm.attacks.surface import context_to_body_affine, paint_through_box
from emotic_mm.errors import ConfigError
from support import TINY_MODEL, compose_cfg, run_cli_all

SIZE = 12
HOT = (7, 5)  # (x, y): a bright red pixel here flips class 0 → class 1


class OnePixelModel(nn.Module):
    """Class 0 by default; class 1 wins when the red channel at HOT exceeds 200; class 2 needs green at
    HOT."""

    variant = "toy"

    def __init__(self) -> None:
        super().__init__()
        self.dummy = nn.Parameter(torch.zeros(1))
        self.calls = 0
        self.max_rows = 0

    def forward(self, batch):
        x = batch["context"].float()
        self.calls += 1
        self.max_rows = max(self.max_rows, x.shape[0])
        red, green = x[:, 0, HOT[1], HOT[0]], x[:, 1, HOT[1], HOT[0]]
        logits = torch.zeros(x.shape[0], 26)
        logits[:, 0] = 1.0
        logits[:, 1] = (red - 200.0) / 20.0 + 1.0
        logits[:, 2] = (green - 220.0) / 20.0 + 1.0 - (red > 200).float() * 5
        return {"logits": logits + self.dummy}


def _inputs(n: int) -> dict[str, torch.Tensor]:
    return {"context": torch.full((n, 3, SIZE, SIZE), 60, dtype=torch.uint8)}


def _settings(**kw) -> PixelAttackSettings:
    base = dict(pixels=1, surface="context", budget=3000, population=30, max_batch=64, seed=1)
    base.update(kw)
    return PixelAttackSettings(**base)


@pytest.mark.parametrize("algorithm", ["de", "rs"])
def test_finds_the_known_pixel_untargeted(algorithm):
    model = OnePixelModel()
    inputs = _inputs(5)
    res = PixelAttack(model, _settings(algorithm=algorithm)).run(inputs, torch.zeros(5, dtype=torch.long))
    assert res.success.all()
    assert (res.pixels[:, 0, 0] == HOT[0]).all() and (res.pixels[:, 0, 1] == HOT[1]).all()
    assert (res.adv_top1 != 0).all() and (res.clean_top1 == 0).all()


def test_targeted_success_on_an_easy_case():
    model = OnePixelModel()
    res = PixelAttack(model, _settings(targeted=True)).run(_inputs(3), torch.full((3,), 2, dtype=torch.long))
    assert res.success.all() and (res.adv_top1 == 2).all()
    assert (res.pixels[:, 0, 3] > 220).all() and (res.pixels[:, 0, 2] <= 200).all()


def test_query_accounting_is_exact_and_budget_respected():
    model = OnePixelModel()
    s = _settings(budget=95, population=30, targeted=True)  # 30 initial + 2 generations of 30 = 90 ≤ 95 < 120
    # an impossible target (class 5 never wins) → every image uses its whole usable budget
    res = PixelAttack(model, s).run(_inputs(4), torch.full((4,), 5, dtype=torch.long))
    assert not res.success.any()
    assert res.queries.tolist() == [90, 90, 90, 90]
    # forward rows seen by the model = queries + clean pass + final re-evaluation of the best
    model2 = OnePixelModel()
    counted = []
    orig = model2.forward
    model2.forward = lambda b: (counted.append(b["context"].shape[0]), orig(b))[1]
    PixelAttack(model2, _settings(budget=95, population=30, targeted=True)).run(
        _inputs(4), torch.full((4,), 5, dtype=torch.long)
    )
    assert sum(counted) == 4 * 90 + 4 + 4


def test_successful_images_leave_the_batch():
    model = OnePixelModel()
    inputs = _inputs(2)
    inputs["context"][0, 0, HOT[1], HOT[0]] = (
        255  # image 0 is already class 1 → succeeds in the initial population
    )
    res = PixelAttack(model, _settings(targeted=True, budget=300)).run(inputs, torch.tensor([1, 5]))
    assert bool(res.success[0]) and res.queries[0] == 30
    assert not bool(res.success[1]) and res.queries[1] == 300


def test_deterministic_under_a_seed():
    a = PixelAttack(OnePixelModel(), _settings(algorithm="de", seed=4)).run(
        _inputs(3), torch.zeros(3, dtype=torch.long)
    )
    b = PixelAttack(OnePixelModel(), _settings(algorithm="de", seed=4)).run(
        _inputs(3), torch.zeros(3, dtype=torch.long)
    )
    assert torch.equal(a.pixels, b.pixels) and torch.equal(a.queries, b.queries)


def test_memory_bounded_by_max_batch():
    model = OnePixelModel()
    s = _settings(
        population=40, max_batch=16, budget=200
    )  # 10 images x 40 candidates = 400 rows per generation
    PixelAttack(model, s).run(_inputs(10), torch.full((10,), 5, dtype=torch.long))
    assert model.max_rows <= 16


def test_scene_maps_a_context_pixel_into_the_body_crop():
    # original image 448x224, box x 112..336 (224 wide), y 0..224; context view 224x224
    # → 1 ctx px = 2x1 original px
    boxes = torch.tensor([[112, 0, 336, 224]])
    sizes = torch.tensor([[448, 224]])
    affine = context_to_body_affine(boxes, sizes, context_size=224, body_size=128)
    body = torch.zeros(1, 3, 128, 128, dtype=torch.uint8)
    cand = torch.tensor(
        [[[84, 112, 255, 0, 0]]]
    )  # ctx x 84 → original 168..170 → body (168-112)*128/224 = 32..33.1
    paint_through_box(body, cand, affine)
    red = body[0, 0].nonzero()
    assert sorted(set(red[:, 1].tolist())) == [32, 33]  # x: [32, 33.14) covers body columns 32 and 33
    assert sorted(set(red[:, 0].tolist())) == [64]  # y: 112..113 original → body [64, 64.57)
    outside = torch.tensor([[[10, 10, 255, 0, 0]]])  # left of the box: nothing painted
    body2 = torch.zeros(1, 3, 128, 128, dtype=torch.uint8)
    paint_through_box(body2, outside, affine)
    assert body2.sum() == 0


@pytest.mark.parametrize(
    "kw,message",
    [
        (dict(pixels=0), "attack.pixels=0"),
        (dict(surface="face"), "attack.surface"),
        (dict(algorithm="ga"), "attack.algorithm"),
        (dict(budget=5, population=30), "attack.budget"),
    ],
)
def test_bad_settings_are_clear(kw, message):
    with pytest.raises(ConfigError, match=message):
        _settings(**kw).check()


@pytest.mark.slow  # CLI: several emotic-mm attack processes
def test_cli_bad_inputs_one_line(tmp_path):
    cases = [
        (["attack.pixels=0", f"checkpoint={tmp_path}"], "attack.pixels=0"),
        ([f"checkpoint={tmp_path / 'missing'}"], "not a checkpoint folder"),
        (
            ["attack.targeted=true", "attack.target=Joy", f"checkpoint={tmp_path / 'missing'}"],
            "attack.target='Joy'",
        ),
    ]
    procs = run_cli_all(
        [["attack", *args, f"hydra.run.dir={tmp_path / f'r{i}'}"] for i, (args, _) in enumerate(cases)]
    )
    for proc, (_, needle) in zip(procs, cases, strict=True):
        lines = [l for l in proc.stderr.splitlines() if l.strip()]
        assert proc.returncode != 0 and len(lines) == 1 and needle in lines[0], proc.stderr[-1500:]


def test_unknown_target_emotion_is_clear():
    from omegaconf import OmegaConf

    from emotic_mm.recipes.pixel_evasion import choose_targets

    with pytest.raises(ConfigError, match="not an EMOTIC category"):
        choose_targets(OmegaConf.create({"target": "Joy"}), torch.zeros(2, 26), 0)
    t = choose_targets(OmegaConf.create({"target": "random"}), torch.eye(26)[:2], 0)
    assert t[0] != 0 and t[1] != 1


def test_cached_unchanged_views_give_the_same_logits():
    """Encoding body and text once (not per query) changes nothing but the cost."""
    from emotic_mm.models.factory import build_model

    cfg = compose_cfg("train", ["model=joint", *TINY_MODEL])
    torch.manual_seed(0)
    model = build_model(cfg.model).eval()
    g = torch.Generator().manual_seed(0)
    inputs = {
        "context": torch.randint(0, 256, (3, 3, 64, 64), generator=g, dtype=torch.uint8),
        "body": torch.randint(0, 256, (3, 3, 32, 32), generator=g, dtype=torch.uint8),
        "input_ids": torch.randint(1000, 3000, (3, 12), generator=g),
        "attention_mask": torch.ones(3, 12, dtype=torch.long),
    }
    cand = torch.tensor([[[3, 4, 255, 0, 0]], [[10, 60, 0, 255, 0]], [[63, 0, 0, 0, 255]]])
    owner, label = torch.arange(3), torch.zeros(3, dtype=torch.long)
    plain = PixelAttack(model, _settings(cache_unchanged=False))
    cached = PixelAttack(model, _settings(cache_unchanged=True))
    with torch.inference_mode():
        a = plain.evaluate(inputs, owner, cand, label, None)[1]
        slim = cached._with_cached_features(inputs)
        assert set(slim) == {"context", "features.body", "features.text"}
        b = cached.evaluate(slim, owner, cand, label, None)[1]
    torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-4)


def test_de_donors_are_distinct_and_not_the_member():
    from emotic_mm.attacks.pixel import distinct_donors

    d = distinct_donors(7, 5, torch.Generator().manual_seed(0))
    own = torch.arange(5)[None, :, None]
    assert (d != own).all()
    assert (
        (d[..., 0] != d[..., 1]).all() and (d[..., 0] != d[..., 2]).all() and (d[..., 1] != d[..., 2]).all()
    )


def test_model_resolution_views_are_exact():
    """attack.resolution=model feeds the encoders' own working pictures: same logits as the stored views."""
    from emotic_mm.models.factory import build_model
    from emotic_mm.recipes.pixel_evasion import working_views

    cfg = compose_cfg(
        "train",
        [
            "model=baseline",
            "model.modalities=[context,body]",
            "model.image_encoder.input_size.context=24",
            "model.image_encoder.input_size.body=16",
        ],
    )
    torch.manual_seed(0)
    model = build_model(cfg.model).eval()
    g = torch.Generator().manual_seed(1)
    inputs = {
        "context": torch.randint(0, 256, (2, 3, 64, 64), generator=g, dtype=torch.uint8),
        "body": torch.randint(0, 256, (2, 3, 32, 32), generator=g, dtype=torch.uint8),
    }
    small = working_views(model, inputs)
    assert small["context"].shape[-1] == 24 and small["body"].shape[-1] == 16
    with torch.inference_mode():
        torch.testing.assert_close(model(inputs)["logits"], model(small)["logits"])


# --------------------------------------------------------------------------- the k-schedule (issue 10)
class _NeedsBrightPixels(torch.nn.Module):
    """Top-1 flips from class 0 to class 1 once at least ``need`` pixels of the context view are bright
    (all channels > 200); ``need`` is read from the body view, which the attack never touches. So the
    minimal k of every image is known: exactly ``need``."""

    def __init__(self) -> None:
        super().__init__()
        self.anchor = torch.nn.Parameter(torch.zeros(()))

    def forward(self, batch):
        bright = (batch["context"].float().amin(1) > 200).flatten(1).sum(1).float()
        need = batch["body"][:, 0, 0, 0].float()
        rest = torch.full((bright.shape[0], 24), -10.0)
        return {"logits": torch.cat([torch.stack([need - 0.5, bright], 1), rest], 1) + self.anchor}


def test_the_k_schedule_finds_each_images_minimal_k():
    needs = torch.tensor([1, 2, 3, 5, 9])  # minimal k of each image
    inputs = {
        "context": torch.zeros(5, 3, 8, 8, dtype=torch.uint8),
        "body": needs.view(5, 1, 1, 1).expand(5, 3, 2, 2).to(torch.uint8).clone(),
    }
    engine = PixelAttack(
        _NeedsBrightPixels(),
        PixelAttackSettings(algorithm="rs", budget=2000, population=20, rs_fraction=0.3, seed=0),
        torch.device("cpu"),
    )
    result = engine.run_schedule(inputs, [8, 1, 2, 4])
    assert result.ks == [1, 2, 4, 8]
    assert result.pixels_needed.tolist() == [1, 2, 4, 8, 0]  # the smallest k of the schedule >= the need
    assert result.success.tolist() == [
        [True] * 4,
        [False, True, True, True],
        [False, False, True, True],
        [False, False, False, True],
        [False] * 4,
    ]
    assert (result.adv_top1[:, -1] == torch.tensor([1, 1, 1, 1, 0])).all()
    fooled_with = (result.pixels >= 0).all(-1).sum(1)  # pixels kept for the fooling k
    assert fooled_with[:4].tolist() == [1, 2, 4, 8]
    # a person fooled at k is not attacked again: the k=1 image spent only its first level's queries
    assert result.queries[0] < result.queries[3]


def test_robust_means_right_before_and_under_the_attack() -> None:
    """A person the model gets wrong is never counted robust, even when the untargeted search moves its
    answer into the label set: robust dominant accuracy cannot exceed the clean one."""
    from types import SimpleNamespace

    from emotic_mm.data.categories import CATEGORY_INDEX
    from emotic_mm.recipes.pixel_evasion import person_rows

    labels = torch.zeros(2, 26)
    labels[:, CATEGORY_INDEX["Happiness"]] = 1
    happy, sad = CATEGORY_INDEX["Happiness"], CATEGORY_INDEX["Sadness"]
    result = SimpleNamespace(
        ks=[1],
        clean_top1=torch.tensor([sad, happy]),
        pixels_needed=torch.tensor([1, 0]),
        pixels=torch.full((2, 1, 5), -1),
        queries=torch.tensor([10, 10]),
        success=torch.tensor([[True], [False]]),
        adv_top1=torch.tensor([[happy], [happy]]),
        margin=torch.tensor([-0.1, 0.2]),
        clean_confidence=torch.tensor([0.5, 0.5]),
        adv_confidence=torch.tensor([0.5, 0.5]),
    )
    rows = person_rows([0, 1], labels, result, None)
    assert [r["clean_correct"] for r in rows] == [False, True]
    assert [r["robust_k1"] for r in rows] == [False, True]
