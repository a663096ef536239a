"""Defense wing: input defenses (part of a model's preprocessing), certification and poison detection.
Each kind is registered in :mod:`emotic_mm.defenses.registry`."""
