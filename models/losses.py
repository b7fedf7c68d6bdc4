"""Losses on LOGITS (never probabilities): bce, soft dice, and the paper's bce_dice.

The paper's DeepLabV3+ fed raw logits into a loss that expected probabilities; here every
loss takes logits and applies the sigmoid itself, in float32.
Each loss returns one value per image, so Keras' reductions and sample weights work.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import keras
from keras import ops

__all__ = ["LOSSES", "BinaryCrossentropyLoss", "BCEDiceLoss", "SoftDiceLoss", "get_loss"]

LOSSES = ("bce", "dice", "bce_dice")
_PACKAGE = "steelseg"


def _check_pos_weight(pos_weight: float | Sequence[float] | None) -> list[float] | None:
    if pos_weight is None:
        return None
    values = [pos_weight] if isinstance(pos_weight, int | float) else list(pos_weight)
    for value in values:
        if (
            isinstance(value, bool)
            or not isinstance(value, int | float)
            or not math.isfinite(value)
            or value <= 0
        ):
            raise ValueError(
                f"pos_weight={pos_weight!r}: expected a positive number or one positive number per class"
            )
    return [float(v) for v in values]


def _check_smooth(smooth: float) -> float:
    if (
        isinstance(smooth, bool)
        or not isinstance(smooth, int | float)
        or not math.isfinite(smooth)
        or smooth <= 0
    ):
        raise ValueError(
            f"smooth={smooth!r}: expected a positive number (it keeps empty/empty Dice at 1)"
        )
    return float(smooth)


def _bce_per_image(y_true, logits, pos_weight: list[float] | None):
    y = ops.cast(y_true, "float32")
    x = ops.cast(logits, "float32")
    # log(1 + exp(-|x|)) + max(-x, 0) = -log(sigmoid(x)), stable for any x.
    log_sigmoid_neg = ops.log1p(ops.exp(-ops.abs(x))) + ops.relu(-x)
    if pos_weight is None:
        per_pixel = (1.0 - y) * x + log_sigmoid_neg
    else:
        classes = logits.shape[-1]
        if len(pos_weight) not in (1, classes) and classes is not None:
            raise ValueError(
                f"pos_weight has {len(pos_weight)} values but the model has {classes} classes"
            )
        weight = ops.convert_to_tensor(pos_weight, dtype="float32")
        per_pixel = (1.0 - y) * x + (1.0 + (weight - 1.0) * y) * log_sigmoid_neg
    return ops.mean(per_pixel, axis=(1, 2, 3))


def _soft_dice_loss_per_image(y_true, logits, smooth: float):
    y = ops.cast(y_true, "float32")
    p = ops.sigmoid(ops.cast(logits, "float32"))
    intersection = ops.sum(y * p, axis=(1, 2))
    total = ops.sum(y, axis=(1, 2)) + ops.sum(p, axis=(1, 2))
    # Per (image, class), as the Kaggle metric is; smoothing makes an empty/empty pair score ~1.
    dice = (2.0 * intersection + smooth) / (total + smooth)
    return 1.0 - ops.mean(dice, axis=-1)


class _LogitsLoss(keras.losses.Loss):
    def __init__(self, *, name: str, reduction: str = "sum_over_batch_size", dtype=None):
        super().__init__(name=name, reduction=reduction, dtype=dtype)

    def get_config(self):
        return {"name": self.name, "reduction": self.reduction}


@keras.saving.register_keras_serializable(package=_PACKAGE)
class BinaryCrossentropyLoss(_LogitsLoss):
    """Mean per-pixel binary cross-entropy of logits; `pos_weight` scales the positive term per class."""

    def __init__(self, *, pos_weight=None, name: str = "bce", **kwargs):
        super().__init__(name=name, **kwargs)
        self.pos_weight = _check_pos_weight(pos_weight)

    def call(self, y_true, y_pred):
        return _bce_per_image(y_true, y_pred, self.pos_weight)

    def get_config(self):
        return {**super().get_config(), "pos_weight": self.pos_weight}


@keras.saving.register_keras_serializable(package=_PACKAGE)
class SoftDiceLoss(_LogitsLoss):
    """1 - soft Dice of sigmoid(logits), per (image, class), averaged over classes."""

    def __init__(self, *, smooth: float = 1.0, name: str = "dice", **kwargs):
        super().__init__(name=name, **kwargs)
        self.smooth = _check_smooth(smooth)

    def call(self, y_true, y_pred):
        return _soft_dice_loss_per_image(y_true, y_pred, self.smooth)

    def get_config(self):
        return {**super().get_config(), "smooth": self.smooth}


@keras.saving.register_keras_serializable(package=_PACKAGE)
class BCEDiceLoss(_LogitsLoss):
    """The paper's loss: bce + (1 - soft Dice)."""

    def __init__(self, *, smooth: float = 1.0, pos_weight=None, name: str = "bce_dice", **kwargs):
        super().__init__(name=name, **kwargs)
        self.smooth = _check_smooth(smooth)
        self.pos_weight = _check_pos_weight(pos_weight)

    def call(self, y_true, y_pred):
        bce = _bce_per_image(y_true, y_pred, self.pos_weight)
        return bce + _soft_dice_loss_per_image(y_true, y_pred, self.smooth)

    def get_config(self):
        return {**super().get_config(), "smooth": self.smooth, "pos_weight": self.pos_weight}


def get_loss(
    name: str, *, smooth: float = 1.0, pos_weight: float | Sequence[float] | None = None
) -> keras.losses.Loss:
    """The loss `name` (bce | dice | bce_dice) taking (y_true, logits)."""
    if name == "bce":
        return BinaryCrossentropyLoss(pos_weight=pos_weight)
    if name == "dice":
        if pos_weight is not None:
            raise ValueError(
                "loss 'dice' takes no pos_weight (it only weights the bce term); use bce or bce_dice"
            )
        return SoftDiceLoss(smooth=smooth)
    if name == "bce_dice":
        return BCEDiceLoss(smooth=smooth, pos_weight=pos_weight)
    raise ValueError(f"unknown loss {name!r}; valid: {', '.join(LOSSES)}")
