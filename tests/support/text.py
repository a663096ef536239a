"""The no-label-words rule: descriptions must not name the emotion they describe."""

from __future__ import annotations

import re

# The 26 category names and their obvious word forms ("pain" only as a word: "painted" is fine).
LABEL_WORD_PATTERNS = (
    r"affection",
    r"\banger",
    r"\bangr(y|ily|ier)\b",
    r"annoy",
    r"anticipat",
    r"aversion",
    r"confiden",
    r"disapprov",
    r"disconnect",
    r"disquiet",
    r"doubt",
    r"confus",
    r"embarrass",
    r"engag",
    r"esteem",
    r"excit",
    r"fatigue",
    r"\bfear",
    r"happ(?!en)",
    r"\bpain(s|ful|fully)?\b",
    r"\bpeace",
    r"pleas",
    r"\bsad",
    r"sensitiv",
    r"suffer",
    r"surpris",
    r"sympath",
    r"yearn",
)
LABEL_WORDS = re.compile("|".join(LABEL_WORD_PATTERNS), re.IGNORECASE)


def label_words(text: str) -> list[str]:
    """The label words (and their word forms) found in ``text``."""
    return [m.group(0) for m in LABEL_WORDS.finditer(text)]
