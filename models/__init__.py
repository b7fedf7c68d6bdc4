"""Keras architectures, blocks, losses and metrics. Knows neither Ray nor Arrow.

Importing the package registers the custom layers, losses and metrics with Keras, so
`keras.saving.load_model(path, safe_mode=True)` works after `import models`.
"""

from __future__ import annotations

from models import layers as _layers  # noqa: F401  (registers serializable layers)
from models import losses as _losses  # noqa: F401
from models import metrics as _metrics  # noqa: F401
from models.hparams import PRECISIONS, HParam, HParamError
from models.outputs import probabilities
from models.precision import PRECISION_CHOICES, resolve_precision, wrap_optimizer
from models.registry import build_model, hparam_spec, load_model, model_names, resolve_hparams

__all__ = [
    "PRECISIONS",
    "PRECISION_CHOICES",
    "HParam",
    "HParamError",
    "build_model",
    "hparam_spec",
    "load_model",
    "model_names",
    "probabilities",
    "resolve_hparams",
    "resolve_precision",
    "wrap_optimizer",
]
