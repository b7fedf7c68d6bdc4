"""The one output convention: logits in float32; probabilities are their sigmoid."""

from __future__ import annotations

from typing import Any

import keras
import numpy as np

__all__ = ["logits_head", "probabilities"]


def logits_head(features, *, num_classes: int, name: str = "logits"):
    """1x1 conv to `num_classes` logits, cast to float32 so mixed precision never reaches the loss."""
    x = keras.layers.Conv2D(num_classes, 1, name=f"{name}_conv")(features)
    return keras.layers.Activation("linear", dtype="float32", name=name)(x)


def probabilities(logits: Any) -> Any:
    """Sigmoid of logits: a NumPy array for NumPy input, a tensor for tensor input."""
    if isinstance(logits, np.ndarray | np.generic | float | int | list):
        array = np.asarray(logits, dtype=np.float32)
        # tanh form: no overflow warning for large negative logits, unlike 1 / (1 + exp(-x)).
        return (0.5 * (1.0 + np.tanh(0.5 * array))).astype(np.float32)
    return keras.ops.sigmoid(keras.ops.cast(logits, "float32"))
