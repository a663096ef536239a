"""Poison detectors on learned representations, run per target category of a multi-label training set.

Why our own code: ART's ``SpectralSignatureDefense`` and ``ActivationDefence`` wrap a single-input
classifier and one label per row; EMOTIC persons carry several of 26 categories and the representation
we inspect comes from a multimodal model (``image_representation`` or the fused embedding). Both
detectors here take plain features (N, D) and a membership matrix (N, C) — a row belongs to every
category it is labelled with — run once per category over its members, and flag a row when any category
flags it. They are the step between the store and the trainer: detect → drop the flagged rows → retrain.

* :func:`spectral_signatures` (Tran, Li & Madry, NeurIPS 2018): within a class, centre the
  representations, take the top right-singular vector v of the centred matrix, score each row by its
  squared projection ⟨x − μ, v⟩², and remove the ``ceil(factor · ε · n)`` highest scores (factor 1.5,
  ε = an upper bound on the poisoned share, as in the paper).
* :func:`activation_clustering` (Chen et al., 2018, "Detecting Backdoor Attacks on Deep Neural Networks by
  Activation Clustering"): within a class, reduce to ``dims`` (10) dimensions with ICA (the paper's
  choice; PCA on request), split in two with k-means, and flag the smaller cluster when its relative size
  is below ``size_threshold`` (0.35; the "relative size" analysis) or, with ``analysis="silhouette"``,
  when the two-cluster silhouette score reaches ``silhouette_threshold`` (a clean class fits two clusters
  poorly). Needs scikit-learn (KMeans, FastICA, silhouette_score).

Scores are comparable across categories: spectral scores are divided by the category's mean score;
activation-clustering scores are ``1 − relative size`` of the row's cluster (0 for rows of a class that
was not split). A row's score is its maximum over the categories it belongs to.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from emotic_mm.config import whole_number
from emotic_mm.errors import ConfigError


@dataclass(frozen=True)
class Detection:
    """Rows flagged as poisons (N,), a suspicion score per row (N,), and the flagged count per category."""

    flagged: np.ndarray
    scores: np.ndarray
    per_category: dict[int, int] = field(default_factory=dict)

    def rates(self, poisoned: Any) -> dict[str, float]:
        """TPR and FPR against the known poisoned rows (boolean (N,))."""
        truth = np.asarray(poisoned, dtype=bool)
        if truth.shape != self.flagged.shape:
            raise ValueError("poisoned must have one entry per row")
        pos, neg = truth.sum(), (~truth).sum()
        return {
            "tpr": float((self.flagged & truth).sum() / pos) if pos else float("nan"),
            "fpr": float((self.flagged & ~truth).sum() / neg) if neg else float("nan"),
            "flagged": int(self.flagged.sum()),
            "poisoned": int(pos),
            "rows": int(truth.size),
        }


def _features(features: Any) -> np.ndarray:
    if isinstance(features, torch.Tensor):
        features = features.detach().float().cpu().numpy()
    x = np.asarray(features, dtype=np.float64)
    if x.ndim != 2:
        raise ValueError(f"features must be (rows, dims), got shape {x.shape}")
    return x


def _membership(membership: Any, rows: int) -> np.ndarray:
    """(N, C) boolean; a 1-D integer label vector becomes one-hot."""
    if isinstance(membership, torch.Tensor):
        membership = membership.detach().cpu().numpy()
    m = np.asarray(membership)
    if m.ndim == 1:
        if m.shape[0] != rows:
            raise ValueError("labels must have one entry per row")
        labels = m.astype(np.int64)
        onehot = np.zeros((rows, int(labels.max()) + 1 if rows else 0), dtype=bool)
        onehot[np.arange(rows), labels] = True
        return onehot
    if m.ndim != 2 or m.shape[0] != rows:
        raise ValueError(f"membership must be (rows, categories) or (rows,), got shape {m.shape}")
    return m > 0.5 if m.dtype != bool else m


def _categories(member: np.ndarray, categories: Sequence[int] | None) -> list[int]:
    if categories is None:
        return list(range(member.shape[1]))
    cats = [int(c) for c in categories]
    bad = [c for c in cats if not 0 <= c < member.shape[1]]
    if bad:
        raise ConfigError(f"defense.categories={bad} are not among the {member.shape[1]} categories")
    return cats


def _per_category(
    features: Any,
    membership: Any,
    categories: Sequence[int] | None,
    min_rows: int,
    judge: Callable[[np.ndarray], tuple[np.ndarray, np.ndarray]],
) -> Detection:
    """Run ``judge(features of a category's rows) -> (flagged, scores)`` on every category with at least
    ``min_rows`` members; a row is flagged if any of its categories flags it, and keeps its highest score."""
    x = _features(features)
    member = _membership(membership, x.shape[0])
    flagged = np.zeros(x.shape[0], dtype=bool)
    scores = np.zeros(x.shape[0])
    per_category: dict[int, int] = {}
    for c in _categories(member, categories):
        rows = np.flatnonzero(member[:, c])
        if rows.size < min_rows:
            continue
        flag, score = judge(x[rows])
        flagged[rows[flag]] = True
        if flag.any():
            per_category[c] = int(flag.sum())
        scores[rows] = np.maximum(scores[rows], score)
    return Detection(flagged=flagged, scores=scores, per_category=per_category)


def spectral_signatures(
    features: Any,
    membership: Any,
    epsilon: float = 0.05,
    factor: float = 1.5,
    categories: Sequence[int] | None = None,
    min_rows: int = 2,
) -> Detection:
    """Spectral-signature detection per category (see the module docstring).

    ``epsilon``: upper bound on the poisoned share of a category's rows; ``ceil(factor · epsilon · n)``
    rows are removed from each category with n ≥ ``min_rows`` members.
    """
    if not 0.0 < float(epsilon) < 1.0:
        raise ConfigError(f"defense.epsilon={epsilon!r} must lie strictly between 0 and 1")
    if float(factor) <= 0.0:
        raise ConfigError(f"defense.factor={factor!r} must be positive")

    def judge(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        centred = x - x.mean(axis=0, keepdims=True)
        _, _, vt = np.linalg.svd(centred, full_matrices=False)
        score = (centred @ vt[0]) ** 2
        remove = min(len(x), math.ceil(float(factor) * float(epsilon) * len(x)))
        flag = np.zeros(len(x), dtype=bool)
        flag[np.argsort(-score, kind="stable")[:remove]] = True
        mean = score.mean()
        return flag, score / mean if mean > 0 else np.zeros_like(score)

    return _per_category(features, membership, categories, max(int(min_rows), 2), judge)


def _reduce(x: np.ndarray, dims: int, method: str, seed: int) -> np.ndarray:
    dims = max(1, min(int(dims), x.shape[1], x.shape[0] - 1))
    centred = x - x.mean(axis=0, keepdims=True)
    if method == "pca":
        u, s, _ = np.linalg.svd(centred, full_matrices=False)
        return u[:, :dims] * s[:dims]
    if method == "ica":
        import warnings

        from sklearn.decomposition import FastICA
        from sklearn.exceptions import ConvergenceWarning

        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            return FastICA(
                n_components=dims, whiten="unit-variance", max_iter=1000, random_state=seed
            ).fit_transform(centred)
    raise ConfigError(f"defense.reduce={method!r} is not one of ica, pca")


def activation_clustering(
    features: Any,
    membership: Any,
    dims: int = 10,
    reduce: str = "ica",
    analysis: str = "size",
    size_threshold: float = 0.35,
    silhouette_threshold: float = 0.25,
    categories: Sequence[int] | None = None,
    min_rows: int = 10,
    seed: int = 0,
) -> Detection:
    """Activation clustering per category (see the module docstring).

    ``analysis``: ``size`` flags the smaller of the two k-means clusters when it holds less than
    ``size_threshold`` of the category's rows; ``silhouette`` flags it when the silhouette score of the
    split is at least ``silhouette_threshold``. Categories with fewer than ``min_rows`` members are skipped.
    """
    if analysis not in ("size", "silhouette"):
        raise ConfigError(f"defense.analysis={analysis!r} is not one of size, silhouette")
    if reduce not in ("ica", "pca"):
        raise ConfigError(f"defense.reduce={reduce!r} is not one of ica, pca")
    if not 0.0 < float(size_threshold) < 1.0:
        raise ConfigError(f"defense.size_threshold={size_threshold!r} must lie strictly between 0 and 1")
    whole_number(dims, "defense.dims", 1)
    from sklearn.cluster import KMeans
    from sklearn.metrics import silhouette_score

    def judge(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        z = _reduce(x, dims, reduce, seed)
        assign = KMeans(n_clusters=2, n_init=10, random_state=seed).fit_predict(z)
        sizes = np.bincount(assign, minlength=2)
        if sizes.min() == 0:
            return np.zeros(len(x), dtype=bool), np.zeros(len(x))
        small = int(np.argmin(sizes))
        relative = sizes / len(x)
        if analysis == "size":
            poisoned = relative[small] < float(size_threshold)
        else:
            poisoned = relative[small] < 0.5 and silhouette_score(z, assign) >= float(silhouette_threshold)
        return (assign == small) & poisoned, 1.0 - relative[assign]

    return _per_category(features, membership, categories, max(int(min_rows), 4), judge)


@dataclass(frozen=True)
class SpectralSettings:
    epsilon: float = 0.05
    factor: float = 1.5
    representation: str = "image"  # image (``image_representation``) | fused (``fused_embedding``)

    def detect(self, features: Any, membership: Any, categories: Sequence[int] | None = None) -> Detection:
        return spectral_signatures(features, membership, self.epsilon, self.factor, categories)


@dataclass(frozen=True)
class ActivationClusteringSettings:
    dims: int = 10
    reduce: str = "ica"
    analysis: str = "size"
    size_threshold: float = 0.35
    silhouette_threshold: float = 0.25
    min_rows: int = 10
    seed: int = 0
    representation: str = "image"

    def detect(self, features: Any, membership: Any, categories: Sequence[int] | None = None) -> Detection:
        return activation_clustering(
            features,
            membership,
            self.dims,
            self.reduce,
            self.analysis,
            self.size_threshold,
            self.silhouette_threshold,
            categories,
            self.min_rows,
            self.seed,
        )


REPRESENTATIONS = ("image", "fused")


def _settings(cls: type, block: Any) -> Any:
    from emotic_mm.defenses.settings import from_block

    settings = from_block(cls, block)
    if settings.representation not in REPRESENTATIONS:
        raise ConfigError(
            f"defense.representation={settings.representation!r} is not one of {', '.join(REPRESENTATIONS)}"
        )
    return settings


def spectral_from_config(block: Any) -> SpectralSettings:
    """``defense=spectral`` block → settings whose ``detect(features, membership)`` runs the detector."""
    s = _settings(SpectralSettings, block)
    if not 0.0 < float(s.epsilon) < 1.0:
        raise ConfigError(f"defense.epsilon={s.epsilon!r} must lie strictly between 0 and 1")
    return s


def activation_clustering_from_config(block: Any) -> ActivationClusteringSettings:
    """``defense=activation_clustering`` block → settings with ``detect(features, membership)``."""
    s = _settings(ActivationClusteringSettings, block)
    if s.reduce not in ("ica", "pca"):
        raise ConfigError(f"defense.reduce={s.reduce!r} is not one of ica, pca")
    if s.analysis not in ("size", "silhouette"):
        raise ConfigError(f"defense.analysis={s.analysis!r} is not one of size, silhouette")
    return s
