"""The Kaggle Severstal metric: mean over every (image, class) pair of 2|X∩Y|/(|X|+|Y|),
an empty prediction of an empty mask scoring 1. The seed paper's variant (empty/empty = 0)
is behind `paper_variant=True`; it is not what the leaderboard measured."""

from __future__ import annotations

from collections.abc import Sequence

import keras
import numpy as np
from keras import ops

__all__ = [
    "KaggleDice",
    "PerClassDice",
    "dice_metrics",
    "kaggle_dice",
    "pair_dice",
    "per_class_dice",
]

_PACKAGE = "steelseg"


def _as_binary(array: np.ndarray, label: str) -> np.ndarray:
    array = np.asarray(array)
    if array.ndim != 4:
        raise ValueError(f"{label} has shape {array.shape}; expected (N, H, W, C) masks")
    if array.dtype == bool:
        return array
    if not np.isin(array, (0, 1)).all():
        raise ValueError(
            f"{label} holds values other than 0/1 (e.g. {array[~np.isin(array, (0, 1))].flat[0]!r}); "
            "threshold probabilities into binary masks first"
        )
    return array.astype(bool)


def pair_dice(y_true: np.ndarray, y_pred: np.ndarray, *, paper_variant: bool = False) -> np.ndarray:
    """Dice of every (image, class) pair, shape (N, C), from binary masks (N, H, W, C)."""
    truth = _as_binary(y_true, "y_true")
    pred = _as_binary(y_pred, "y_pred")
    if truth.shape != pred.shape:
        raise ValueError(f"y_true has shape {truth.shape} but y_pred has shape {pred.shape}")
    intersection = np.logical_and(truth, pred).sum(axis=(1, 2), dtype=np.int64)
    total = truth.sum(axis=(1, 2), dtype=np.int64) + pred.sum(axis=(1, 2), dtype=np.int64)
    empty_score = 0.0 if paper_variant else 1.0
    with np.errstate(invalid="ignore", divide="ignore"):
        dice = np.where(total > 0, 2.0 * intersection / np.maximum(total, 1), empty_score)
    return dice.astype(np.float64)


def kaggle_dice(y_true: np.ndarray, y_pred: np.ndarray, *, paper_variant: bool = False) -> float:
    """Mean Dice over every (image, class) pair of binary masks (N, H, W, C); empty/empty = 1."""
    return float(pair_dice(y_true, y_pred, paper_variant=paper_variant).mean())


def per_class_dice(
    y_true: np.ndarray, y_pred: np.ndarray, *, paper_variant: bool = False
) -> np.ndarray:
    """Mean Dice per class over the images, shape (C,)."""
    return pair_dice(y_true, y_pred, paper_variant=paper_variant).mean(axis=0)


def _check_threshold(threshold: float) -> float:
    if (
        isinstance(threshold, bool)
        or not isinstance(threshold, int | float)
        or not 0 < threshold < 1
    ):
        raise ValueError(
            f"threshold={threshold!r}: expected a probability strictly between 0 and 1"
        )
    return float(threshold)


class _DiceMetric(keras.metrics.Metric):
    """Accumulates per-(image, class) Dice of sigmoid(logits) >= threshold against y_true > 0.5.

    `>=` as in search.promotion.postprocess, so the validation metric equals post-processing at 0.5.
    """

    def __init__(
        self, *, threshold: float = 0.5, paper_variant: bool = False, name: str, dtype=None
    ):
        super().__init__(name=name, dtype=dtype or "float32")
        self.threshold = _check_threshold(threshold)
        self.paper_variant = bool(paper_variant)
        self.total = self.add_variable(shape=(), initializer="zeros", name="total", dtype="float32")
        self.count = self.add_variable(shape=(), initializer="zeros", name="count", dtype="float32")

    def _pair_dice(self, y_true, logits):
        pred = ops.cast(ops.sigmoid(ops.cast(logits, "float32")) >= self.threshold, "float32")
        truth = ops.cast(ops.cast(y_true, "float32") > 0.5, "float32")
        intersection = ops.sum(pred * truth, axis=(1, 2))
        total = ops.sum(pred, axis=(1, 2)) + ops.sum(truth, axis=(1, 2))
        empty_score = 0.0 if self.paper_variant else 1.0
        return ops.where(total > 0, 2.0 * intersection / ops.maximum(total, 1.0), empty_score)

    def _select(self, dice):
        return dice

    def update_state(self, y_true, y_pred, sample_weight=None):
        dice = self._select(self._pair_dice(y_true, y_pred))
        if sample_weight is None:
            weight = ops.ones_like(dice)
        else:
            weight = ops.cast(ops.reshape(sample_weight, (-1,)), "float32")
            weight = ops.reshape(weight, (-1,) + (1,) * (len(dice.shape) - 1)) * ops.ones_like(dice)
        self.total.assign_add(ops.sum(dice * weight))
        self.count.assign_add(ops.sum(weight))

    def result(self):
        return ops.divide_no_nan(self.total, self.count)

    def reset_state(self):
        self.total.assign(0.0)
        self.count.assign(0.0)

    def get_config(self):
        return {
            "name": self.name,
            "dtype": self.dtype,
            "threshold": self.threshold,
            "paper_variant": self.paper_variant,
        }


@keras.saving.register_keras_serializable(package=_PACKAGE)
class KaggleDice(_DiceMetric):
    """Keras metric on logits equal to `kaggle_dice` of the thresholded sigmoid."""

    def __init__(self, threshold: float = 0.5, name: str = "kaggle_dice", **kwargs):
        super().__init__(threshold=threshold, name=name, **kwargs)


@keras.saving.register_keras_serializable(package=_PACKAGE)
class PerClassDice(_DiceMetric):
    """Keras metric on logits: the Kaggle Dice of one class (`per_class_dice(...)[class_index]`)."""

    def __init__(self, class_index: int, threshold: float = 0.5, name: str | None = None, **kwargs):
        if isinstance(class_index, bool) or not isinstance(class_index, int) or class_index < 0:
            raise ValueError(f"class_index={class_index!r}: expected a non-negative int")
        super().__init__(threshold=threshold, name=name or f"dice_{class_index}", **kwargs)
        self.class_index = class_index

    def _select(self, dice):
        classes = dice.shape[-1]
        if classes is not None and self.class_index >= classes:
            raise ValueError(
                f"{self.name}: class_index {self.class_index} but the model has {classes} classes"
            )
        return dice[:, self.class_index]

    def get_config(self):
        return {**super().get_config(), "class_index": self.class_index}


def dice_metrics(
    class_names: Sequence[str], *, threshold: float = 0.5
) -> list[keras.metrics.Metric]:
    """KaggleDice plus one PerClassDice per class named `dice_<class>`: Keras logs val_dice_<class>."""
    names = [str(name) for name in class_names]
    if len(set(names)) != len(names) or not names:
        raise ValueError(f"class_names={list(class_names)!r}: expected distinct, non-empty names")
    return [KaggleDice(threshold=threshold)] + [
        PerClassDice(index, threshold=threshold, name=f"dice_{name}")
        for index, name in enumerate(names)
    ]
