"""Tooling beside the product code: benchmarks and fault injection, one command each.

`python -m search.bench.trial` (a plain Keras fit against one Tune trial), `.efficiency`
(the fifo grid against asha and optuna+asha), `.sizes` (mixed image sizes against one),
`.padding` (mirrored against zero padding on one model), `.promote` (promotion's peak driver
memory on simulated predictions) and `.chaos` (a search whose workers and driver are
SIGKILLed, against the same search run without faults). Nothing in search's stages imports
this package; it imports them.
"""
