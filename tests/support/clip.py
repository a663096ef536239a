"""Tiny random CLIP and SigLIP models saved as complete local folders (model + processor + tokenizer):
``emotic_mm.testkit.save_tiny``, which the bench scripts use too."""

from __future__ import annotations

from emotic_mm.testkit import TEXT, VISION, save_tiny

__all__ = ["TEXT", "VISION", "save_tiny"]
