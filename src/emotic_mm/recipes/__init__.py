"""Recipes of the attack stage, one per attack kind: config → run dir → ``summary.json``.

Each reads top to bottom (clean model → persons → attack → measure → write) and calls the mechanisms of
:mod:`emotic_mm.attacks`; :mod:`emotic_mm.attacks.registry` maps ``attack=<name>`` to its recipe. The
clean model every recipe attacks comes from :mod:`emotic_mm.recipes.clean_model` (given, or trained once
and cached); ``emotic-mm eval certify=true`` runs :mod:`emotic_mm.recipes.certification`.
"""
