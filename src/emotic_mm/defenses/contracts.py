"""What each kind of defense must offer the code that runs it: one Protocol per ``where`` of
:mod:`emotic_mm.defenses.registry`.

A ``DefenseKind``'s ``make`` returns one of these. The stages and models call only what is written here,
so a new defense is a class with these members, and no caller tests for a concrete type.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

if TYPE_CHECKING:  # annotations only: importing the contracts loads no torch
    import numpy as np
    import torch
    from torch import nn

    from emotic_mm.defenses.detectors import Detection

    Batch = dict[str, torch.Tensor]


@runtime_checkable
class InputDefense(Protocol):
    """``where=input``: a transform inside each image encoder, right after the working view and before
    normalisation, so every attack query goes through it. Pixels (B, 3, H, W) in [0, 255] come in; what
    goes out has ``out_channels`` channels (3 for a pixel filter, more for an encoding such as the
    ablated view, which the backbone's first convolution must be widened to read)."""

    name: str  # the ``defense=`` choice it implements, for messages
    out_channels: int  # channels of what it hands the backbone
    deterministic: bool  # same pixels, same output: a fixed encoder may memoise the features behind it

    def __call__(self, pixels: torch.Tensor) -> torch.Tensor: ...

    def adapt_backbone(
        self, backbone: nn.Module, view_size: int | None, mean: Sequence[float], std: Sequence[float]
    ) -> bool:
        """Fit ``backbone`` (in place) to read this defense's output at the encoder's ``view_size``;
        ``mean``/``std`` are the backbone's normalisation. True when the output now carries that
        normalisation itself (the encoder must not normalise it again)."""
        ...


@runtime_checkable
class Certifier(Protocol):
    """``where=certify``: settings of a smoothed classifier's vote certificate (``eval certify=true``).
    The base classifier is trained under the same randomisation: ``encoder_hook`` is that input
    defense, which a certifying kind puts inside the model at training time."""

    @property
    def keep(self) -> int: ...
    @property
    def samples(self) -> int: ...
    @property
    def selection_samples(self) -> int: ...
    @property
    def alpha(self) -> float: ...
    @property
    def max_batch(self) -> int | None: ...
    @property
    def seed(self) -> int: ...

    def generators(self) -> tuple[torch.Generator, torch.Generator]:
        """(selection, estimation) generators, fixed by ``seed`` and independent of each other."""
        ...

    def encoder_hook(self, colour_channels: int = 3) -> InputDefense:
        """The input defense the base classifier trains and is certified with."""
        ...


@runtime_checkable
class TrainingFilter(Protocol):
    """``where=training``: a poison detector on the representations of the model trained on the data;
    the flagged rows are dropped and the model retrained (detect → filter → retrain)."""

    @property
    def representation(self) -> str: ...  # image (``image_representation``) | fused (``fused_embedding``)

    def detect(self, features: Any, membership: Any, categories: Sequence[int] | None = None) -> Detection:
        """Rows flagged among ``features`` (N, D), run per category of ``membership`` (N, C)."""
        ...


@runtime_checkable
class TriggerDetector(Protocol):
    """``where=test``: a test-time detector that flags triggered inputs. ``attack=poison_backdoor`` calls
    ``examine`` and keeps what it returns under ``summary.json``'s ``name`` key."""

    name: str  # the ``defense=`` choice, and the summary key of its findings

    def examine(
        self,
        model: nn.Module,
        view: str,
        val: Any,
        test: Any,
        victims: np.ndarray,
        triggered: Callable[[Batch], Batch],
        device: torch.device,
    ) -> dict[str, Any]:
        """How well it separates the ``victims`` of ``test`` stamped by ``triggered`` from clean test
        persons, its threshold set on held-out ``val`` persons only; ``view`` is the stamped image view."""
        ...


# what ``DefenseKind.make`` returns (``None`` for ``defense=none``)
Defense = InputDefense | Certifier | TrainingFilter | TriggerDetector | None
