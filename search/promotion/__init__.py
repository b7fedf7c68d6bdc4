"""Promotion's rooms: the arrays it keeps on disk and the prediction it hands to workers.

`search.promote` orchestrates: candidates -> `arrays` (splits and uint8 probabilities,
memory-mapped) -> `inference` (one task per model, on Ray workers when a cluster is up) ->
chunked tuning, ensemble selection and scoring -> `final/`.
"""
