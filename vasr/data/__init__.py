"""Corpora: audio I/O, importers, the synthetic corpus and its sentence source."""
