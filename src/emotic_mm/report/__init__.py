"""``emotic-mm report``: aggregate attack and poisoning run dirs into report.md, report.json, runs.csv, PNGs.

``collect`` finds and reads the runs, ``tables`` aggregates them across seeds (with pandas), ``plots``
draws the figures, ``markdown`` writes the page; :mod:`emotic_mm.stages.report` ties them together.
"""
