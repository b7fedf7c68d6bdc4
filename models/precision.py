"""Apply a dtype policy only while a model is built, so no global state leaks out."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import keras

from models.hparams import PRECISIONS

__all__ = ["dtype_policy"]


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
