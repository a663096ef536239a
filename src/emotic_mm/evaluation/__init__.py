"""What ``emotic-mm eval`` does, one job per module: ``model`` (the checkpoint's model, or a zero-shot one),
``scoring`` (a split's outputs, gathered across torchrun ranks), ``metrics`` (the figures papers report),
``outputs`` (the files of the run dir) and ``console`` (the table a person reads).
:mod:`emotic_mm.stages.evaluate` runs them in that order."""
