"""Loading a promoted model and its probabilities, shared by promotion and `search.predict`.

`load_keras_model` loads one .keras file (any failure a `ModelLoadError` naming it),
`check_classes` refuses a model whose output channels are not the classes it is to be used
with, and `model_probabilities` is the sigmoid probabilities of a batch, with flip TTA: what
promotion scores and tunes on, and what `search.predict` writes masks from.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from search.promotion import ensemble

__all__ = ["ModelLoadError", "check_classes", "load_keras_model", "model_probabilities"]


class ModelLoadError(RuntimeError):
    """A model file that cannot be loaded; the message names the file."""


def load_keras_model(path: Path, *, compile: bool = True) -> Any:
    """Load one .keras file through models.load_model; any failure names the file.
    `compile=False` builds no optimizer and loss: enough to predict and to export."""
    if not path.is_file():
        raise ModelLoadError(f"model file {path} does not exist")
    try:
        import models

        return models.load_model(str(path), compile=compile)
    except Exception as exc:  # Keras raises many types for a bad archive
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        named = f"{path}: cannot load model "  # models.load_model names the file already
        if first.startswith(named):
            raise ModelLoadError(f"cannot load model {path} {first[len(named) :]}") from exc
        raise ModelLoadError(f"cannot load model {path}: {first}") from exc


def check_classes(model: Any, class_names: Sequence[str], path: Path, against: str) -> None:
    """ModelLoadError unless the model emits one channel per class of `against` (the shards or
    the ensemble spec it is to be used with): a mismatch would otherwise surface as a shape
    error deep in scoring, or as masks written under the wrong class ids."""
    channels = model.output_shape[-1]
    if channels != len(class_names):
        raise ModelLoadError(
            f"model {path} predicts {channels} classes but {against} has {len(class_names)} "
            f"({', '.join(class_names)}): it was trained on another dataset"
        )


def model_probabilities(
    model: Any, images: np.ndarray, *, flips: Sequence[str] = ("none",)
) -> np.ndarray:
    """Sigmoid probabilities (B, H, W, C) of one batch of uint8 pixels (B, H, W, 1), with flip
    TTA. The model scales them itself (`models.inputs`); a checkpoint from before that
    convention gets them scaled here."""
    import models
    from models.inputs import model_inputs

    def predict(batch: np.ndarray) -> np.ndarray:
        logits = model.predict_on_batch(model_inputs(model, batch))
        return np.asarray(models.probabilities(np.asarray(logits, dtype=np.float32)))

    return ensemble.predict_with_tta(predict, images, flips=flips)
