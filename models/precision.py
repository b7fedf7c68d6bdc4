"""Apply a dtype policy only while a model is built, so no global state leaks out."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import keras

from models.hparams import PRECISIONS

__all__ = ["dtype_policy", "wrap_optimizer"]


@contextmanager
def dtype_policy(precision: str) -> Iterator[None]:
    """Layers created inside use `precision`; each layer stores its policy, so reloading keeps it."""
    if precision not in PRECISIONS:
        raise ValueError(f"precision {precision!r} is not one of {', '.join(PRECISIONS)}")
    previous = keras.config.dtype_policy()
    keras.config.set_dtype_policy(precision)
    try:
        yield
    finally:
        keras.config.set_dtype_policy(previous)


def wrap_optimizer(
    optimizer: keras.optimizers.Optimizer, *, precision: str
) -> keras.optimizers.Optimizer:
    """The optimizer to compile a `precision` model with: loss-scaled under mixed_float16.

    Keras would add the loss scaling itself at compile time, but it saves only the inner
    optimizer in the compile config; a reloaded checkpoint (whose model-level policy reads
    float32) then builds a plain optimizer and silently drops the saved optimizer state.
    Wrapping explicitly makes the loss scaling part of the saved config, so resuming works.
    """
    if precision not in PRECISIONS:
        raise ValueError(f"precision {precision!r} is not one of {', '.join(PRECISIONS)}")
    if precision == "mixed_float16" and not isinstance(
        optimizer, keras.optimizers.LossScaleOptimizer
    ):
        return keras.optimizers.LossScaleOptimizer(optimizer)
    return optimizer
