"""Data wing: the release reader, the synthetic generator, the converter, the store and the loader."""
