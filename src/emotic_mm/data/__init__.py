"""Data wing: the release reader, the converter, the store, the loader and the views a run reads.
The synthetic world that writes a release lives beside it, in :mod:`emotic_mm.synthetic`."""
