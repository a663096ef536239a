"""What ``emotic-mm predict`` does, one job per module: ``preprocessing`` (what ``prepare`` did for the
checkpoint's store), ``inputs`` (the persons to score, read, checked and described), ``scoring`` (the model
over them), ``outputs`` (the records, ``predictions.json`` / ``.csv`` and the guard over them) and
``console`` (the table a person reads). :mod:`emotic_mm.stages.predict` runs them in that order."""
