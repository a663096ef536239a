"""Attack wing: the batched few-pixel evasion engine (and, later, poisoning)."""
