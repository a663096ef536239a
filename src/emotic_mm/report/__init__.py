"""``emotic-mm report``: aggregate attack and poisoning run dirs into report.md, report.json, runs.csv, PNGs.

``collect`` finds and reads the runs; each attack kind's registry entry names its report hooks
(``hooks``: ``pixel`` for a pixel-budget curve, ``rates`` for pooled success counts, the default), which
aggregate, plot and write its section through the family modules ``pixel_*``, ``poison_*`` and
``defense_*`` (tables, plots, markdown) on top of the shared ``tables``, ``plots``, ``markdown`` and
``stats``; :mod:`emotic_mm.stages.report` ties them together and names no kind.
"""
