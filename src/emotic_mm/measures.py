"""How an attack's per-person outcomes are summarised: shared by the recipes and stages that record them
in a run's summary and by the report that pools them, so both read a run the same way.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

MISSING = "–"  # the text of a value that was not measured
ONE_ANSWER_SHARE = 0.9  # a clean model giving this share of the attacked persons one answer is not compared


def median_needed(values: Sequence[float] | np.ndarray, censor: float = math.inf) -> float:
    """Median pixels needed over persons, a person not fooled (NaN) or fooled only beyond ``censor`` counting
    as needing more (∞); ∞ when the median person was not fooled, NaN without persons."""
    values = np.asarray(values, dtype=float)
    if not len(values):
        return math.nan
    return float(np.median(np.where(np.isnan(values) | (values > censor), np.inf, values)))


def median_pixels(value: Any, largest: Any) -> str:
    """Median pixels needed as text; ``> k`` when the median person was not fooled within the largest k."""
    if _nan(value):
        return MISSING
    if math.isinf(value):
        return f"> {int(largest)}" if not _nan(largest) else "> largest k"
    return f"{value:g}"


def one_answer(answers: pd.Series) -> str | None:
    """Why an arm cannot enter a robustness comparison, or ``None``: a clean model that gives (nearly) every
    attacked person the same answer is not flipped because it does not look at the picture, so its low
    success rate says nothing about robustness (it reads as "more robust" otherwise)."""
    known = answers.dropna()
    known = known[known != "None"]
    if known.empty:
        return None
    counts = known.value_counts()
    if counts.iloc[0] / len(known) < ONE_ANSWER_SHARE:
        return None
    return f"{counts.index[0]} for {int(counts.iloc[0])}/{len(known)} persons"


def _nan(value: Any) -> bool:
    return value is None or (isinstance(value, (float, np.floating)) and math.isnan(value))
