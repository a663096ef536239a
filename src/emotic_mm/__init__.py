"""emotic-mm: multi-modal (image + text) emotion recognition on EMOTIC, and its robustness."""

__version__ = "0.1.0"
