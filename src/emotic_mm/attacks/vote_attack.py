"""Attacking what a randomized-ablation certificate is about: the smoothed (majority-vote) classifier.

A plain forward pass of an ablation checkpoint is the *base* classifier on one random ablated view; the
certificate (:mod:`emotic_mm.recipes.certification`) is about the *vote* over many views. So
``emotic-mm attack`` on such a checkpoint wraps the model in :class:`VoteClassifier` — a model the
pixel engine can query like any other, whose logits are the vote shares over ``samples`` ablated context
views — and judges every outcome again with the certification's own sampling (:func:`smoothed_votes`:
the selection round's n0 and seed, and the same fixed treatment of the body crop and the description), so
that ``attack.csv`` and ``certificates.csv`` speak of the same classifier, person by person.

Each query redraws the ablation positions from a generator seeded the same way (common random numbers):
a query is a deterministic function of the picture, which is what a black-box search needs. The query
seed is the attack's, never the certification's: an attacker who searched against the very positions the
judge votes with could fit those few hundred masks (choose pixels that many of them keep) and flip a
fixed-sample vote that the certificate — a statement about fresh random ablations — never covered. A
smaller ``attack.vote_samples`` makes queries cheaper; success is always judged with n0.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

import pandas as pd
import torch
from torch import nn

from emotic_mm.attacks.pixel import Confirm, ScheduleResult
from emotic_mm.defenses.ablation import AblationSettings, sample_votes
from emotic_mm.errors import ConfigError


def vote_logits(votes: torch.Tensor) -> torch.Tensor:
    """Vote counts (B, C) → log-odds of the vote shares (smoothed by ½ a vote), so that the engine's
    margin keeps the vote order (another class wins ⇔ margin < 0; a tie is not a win) and its sigmoid
    "confidence" is about the vote share."""
    n = votes.sum(1, keepdim=True).float()
    v = votes.float()
    return torch.log(v + 0.5) - torch.log(n - v + 0.5)


class VoteClassifier(nn.Module):
    """The smoothed classifier as a model: ``{"context": view, "features.*": fixed}`` → vote log-odds.

    ``context`` is the picture the encoder sees (its working view, pixels in [0, 255]); the fixed
    inputs are the features the attacker cannot change (``certification.fixed_features``).
    """

    def __init__(self, model: nn.Module, keep: int, samples: int, seed: int, max_batch: int | None) -> None:
        super().__init__()
        self.model = model
        self.keep, self.samples, self.seed, self.max_batch = int(keep), int(samples), int(seed), max_batch
        self.training = model.training  # a wrapper starts in the model's mode: who restores it restores that

    def votes(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        view = batch["context"]
        fixed = {k: v for k, v in batch.items() if k != "context"}

        def classify(ablated: torch.Tensor, owner: torch.Tensor) -> torch.Tensor:
            return self.model({"context": ablated, **{k: v[owner] for k, v in fixed.items()}})[
                "logits"
            ].argmax(1)

        generator = torch.Generator().manual_seed(self.seed)  # the same positions for every query
        return sample_votes(classify, view, self.keep, self.samples, self.max_batch, generator)

    def forward(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        return {"logits": vote_logits(self.votes(batch)).to(batch["context"].device)}


@dataclass(frozen=True)
class VoteTarget:
    """How an attack on an ablation checkpoint queries (``query``) and judges (``judge``, the certification's
    selection round) the smoothed classifier."""

    certification: AblationSettings
    query_samples: int
    query_seed: int

    @classmethod
    def from_config(
        cls, certification: AblationSettings, query_samples: Any, attack_seed: int
    ) -> "VoteTarget":
        from emotic_mm.config import whole_number

        n = (
            certification.selection_samples
            if query_samples is None
            else whole_number(query_samples, "attack.vote_samples", 1)
        )
        # odd offsets of 2·seed + 1e9: apart from the certification's streams (2·seed, 2·seed + 1)
        # for any seeds
        return cls(certification, int(n), 1_000_000_001 + 2 * int(attack_seed))

    def query(self, model: nn.Module) -> VoteClassifier:
        """The classifier the search queries: ``query_samples`` views from the attack's own stream."""
        return VoteClassifier(
            model, self.certification.keep, self.query_samples, self.query_seed, self.certification.max_batch
        )

    def judge(self, model: nn.Module) -> VoteClassifier:
        """The certified classifier's selection round: n0 views from the certification's selection stream."""
        c = self.certification
        return VoteClassifier(
            model, c.keep, c.selection_samples, int(c.generators()[0].initial_seed()), c.max_batch
        )


@torch.inference_mode()
def smoothed_votes(
    judge: VoteClassifier, context: torch.Tensor, fixed: dict[str, torch.Tensor]
) -> torch.Tensor:
    """The certified classifier's selection votes (B, C) on CPU for working views ``context``; their argmax
    (ties → lowest index) is its prediction, as in :func:`~emotic_mm.defenses.certify.certify`."""
    return judge.votes({"context": context, **fixed}).cpu()


def vote_share(votes: torch.Tensor, cls: torch.Tensor) -> torch.Tensor:
    """Share of each row's votes that went to ``cls``."""
    return votes.float().gather(1, cls[:, None]).squeeze(1) / votes.sum(1).clamp(min=1)


def check_vote_attack(surface: str, resolution: str) -> None:
    """The certificate's threat model is the context view's pixels at the model's working resolution."""
    if surface != "context":
        raise ConfigError(
            f"attack.surface={surface}: a randomized-ablation checkpoint is certified for the context "
            f"view's pixels; attack it with attack.surface=context"
        )
    if resolution != "model":
        raise ConfigError(
            f"attack.resolution={resolution}: the certificate counts pixels of the picture the model "
            f"sees; attack a randomized-ablation checkpoint with attack.resolution=model"
        )


def confirmer(
    judge: VoteClassifier,
    fixed: dict[str, torch.Tensor],
    clean_votes: torch.Tensor,
    target: torch.Tensor | None,
) -> Confirm:
    """The engine's ``confirm`` for the vote classifier: a level's adversarial pictures classified by the
    certification's selection round; fooled = that prediction left the certified one (untargeted) or is the
    target. A picture that fooled only the query votes is not a success, and its person goes on to the
    next k."""
    clean = clean_votes.argmax(1)

    def confirm(
        views: dict[str, torch.Tensor], persons: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        on = persons.to(views["context"].device)
        votes = smoothed_votes(judge, views["context"], {k: v[on] for k, v in fixed.items()})
        top1 = votes.argmax(1)
        won = top1 == target[persons].cpu() if target is not None else top1 != clean[persons]
        return won, top1, vote_share(votes, top1)

    return confirm


def with_certified_clean(result: ScheduleResult, clean_votes: torch.Tensor) -> ScheduleResult:
    """The schedule's clean top-1 and confidence as the certified classifier's (the engine's clean pass
    used the query votes)."""
    clean = clean_votes.argmax(1)
    return replace(result, clean_top1=clean, clean_confidence=vote_share(clean_votes, clean))


def soundness(certificates: pd.DataFrame, attack: pd.DataFrame, ks: list[int]) -> dict[str, Any]:
    """The certificate's own test: no person certified to radius r may be fooled with k ≤ r pixels.

    ``certificates`` is ``certificates.csv`` (index, radius, …) and ``attack`` is ``attack.csv`` of the
    same checkpoint and split (index, success_k<k>, …); persons are matched on ``index``. A single
    violation means the certificate or its implementation is wrong (up to the certificate's α per
    person, and the judge's finite n0 for persons whose vote share sits right at ½)."""
    both = attack.merge(certificates[["index", "radius"]], on="index", how="inner")
    checked = violations = 0
    violating: set[int] = set()
    for k in ks:
        within = both["radius"] >= k
        fooled = within & both[f"success_k{k}"].astype(bool)
        checked += int(within.sum())
        violations += int(fooled.sum())
        violating.update(int(i) for i in both.loc[fooled, "index"])
    return {
        "persons": int(len(both)),
        "certified_persons": int((both["radius"] >= 0).sum()),
        "checked_person_k": checked,
        "violations": violations,
        "violating_persons": sorted(violating),
        "sound": violations == 0,
    }


def certified_counts(certificates: pd.DataFrame, attack: pd.DataFrame) -> dict[str, Any]:
    """Certified dominant accuracy's counts over the attacked persons: at each report radius r, how many
    have a correct certified prediction with radius ≥ r (``at``), out of ``persons`` — the report pools
    them over seeds with Wilson intervals, beside the empirical robust accuracy of the same persons."""
    from emotic_mm.defenses.certify import REPORT_RADII

    both = attack[["index"]].merge(certificates, on="index", how="inner")
    correct = both["correct"].astype(bool) if "correct" in both else pd.Series(False, index=both.index)
    return {
        "persons": int(len(both)),
        "at": {str(r): int((correct & (both["radius"] >= r)).sum()) for r in REPORT_RADII},
        "abstained": int((both["radius"] < 0).sum()),
    }


def read_certificates(path: Any) -> pd.DataFrame:
    """``attack.certificates``: a ``certificates.csv`` from ``eval certify=true``, or one line naming it."""
    from pathlib import Path

    from emotic_mm.errors import DataFormatError

    path = Path(str(path))
    if path.is_dir():
        path = path / "certificates.csv"
    try:
        table = pd.read_csv(path)
    except (OSError, ValueError) as exc:
        raise ConfigError(
            f"attack.certificates={path}: cannot read a certificates.csv ({type(exc).__name__})"
        ) from None
    missing = {"index", "radius", "correct"} - set(table.columns)
    if missing:
        raise DataFormatError(f"{path}: not a certificates.csv (no {', '.join(sorted(missing))} column)")
    return table
