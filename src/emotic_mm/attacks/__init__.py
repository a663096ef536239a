"""Attack wing: the mechanisms of each attack, free of configs and files.

``surface`` (the one view-edit primitive), ``pixel`` (the batched evasion engine), ``vote_attack`` (the
engine against a randomized-ablation model's vote), ``backdoor`` (few-pixel triggers) and ``collision``
(feature-collision poisons); ``registry`` names every kind for the attack stage and the report. The
recipes that turn a config into a run live in :mod:`emotic_mm.recipes`.
"""
