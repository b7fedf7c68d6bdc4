"""Promotion's rooms: the arrays it keeps on disk, the post-processing and ensembles it tunes.

`search.promote` orchestrates: `candidates` -> `arrays` (splits and uint8 probabilities,
memory-mapped) -> `search.inference.jobs` (one task per model, on Ray workers when a cluster
is up) -> chunked tuning (`postprocess`, on `components`), ensemble selection (`ensemble`)
and `scoring` -> `final/`. `search.predict` applies the `postprocess` and `ensemble` that
promotion wrote.
"""
