"""The one output convention: logits in float32; probabilities are their sigmoid."""

from __future__ import annotations

from typing import Any

import keras
import numpy as np

__all__ = ["logits_head", "probabilities"]


def logits_head(features, *, num_classes: int, prior: float, name: str = "logits"):
    """1x1 conv to `num_classes` logits, cast to float32 so mixed precision never reaches the loss.

    The bias starts at log(prior / (1 - prior)), so every pixel starts at probability `prior`.
    Defects are a small share of pixels; a head that starts at 0.5 spends its first hundreds
    of steps learning that almost everything is background (Lin et al., focal loss, 2017).
    """
    if not 0.0 < prior < 1.0:
        raise ValueError(f"logits_head: prior must be in (0, 1), got {prior!r}")
    bias = float(np.log(prior) - np.log1p(-prior))
    x = keras.layers.Conv2D(
        num_classes, 1, bias_initializer=keras.initializers.Constant(bias), name=f"{name}_conv"
    )(features)
    return keras.layers.Activation("linear", dtype="float32", name=name)(x)


def probabilities(logits: Any) -> Any:
    """Sigmoid of logits: a NumPy array for NumPy input, a tensor for tensor input."""
    if isinstance(logits, np.ndarray | np.generic | float | int | list):
        array = np.asarray(logits, dtype=np.float32)
        # tanh form: no overflow warning for large negative logits, unlike 1 / (1 + exp(-x)).
        return (0.5 * (1.0 + np.tanh(0.5 * array))).astype(np.float32)
    return keras.ops.sigmoid(keras.ops.cast(logits, "float32"))
