"""Losses on logits: hand values, agreement with Keras' own BCE, pos_weight, stability."""

from __future__ import annotations

import keras
import numpy as np
import pytest
import tensorflow as tf

from models.losses import BCEDiceLoss, BinaryCrossentropyLoss, SoftDiceLoss, get_loss


def batch(seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    y_true = (rng.random((3, 6, 5, 2)) > 0.6).astype(np.float32)
    logits = rng.normal(scale=3.0, size=y_true.shape).astype(np.float32)
    return y_true, logits


def value(loss: keras.losses.Loss, y_true, logits) -> float:
    return float(keras.ops.convert_to_numpy(loss(y_true, logits)))


def test_bce_equals_keras_binary_crossentropy_from_logits() -> None:
    y_true, logits = batch()
    expected = keras.losses.BinaryCrossentropy(from_logits=True)(y_true, logits)
    assert value(get_loss("bce"), y_true, logits) == pytest.approx(float(expected), rel=1e-5)


def test_bce_pos_weight_matches_tensorflows_weighted_formula() -> None:
    y_true, logits = batch(1)
    weights = np.array([2.0, 5.0], dtype=np.float32)
    expected = tf.reduce_mean(
        tf.nn.weighted_cross_entropy_with_logits(labels=y_true, logits=logits, pos_weight=weights)
    )
    loss = get_loss("bce", pos_weight=[2.0, 5.0])
    assert value(loss, y_true, logits) == pytest.approx(float(expected), rel=1e-5)
    assert value(get_loss("bce", pos_weight=1.0), y_true, logits) == pytest.approx(
        value(get_loss("bce"), y_true, logits), rel=1e-6
    )


def test_soft_dice_by_hand() -> None:
    # One image, one class, 2 pixels: truth [1, 0]; p = [0.5, 0.5] (logits 0).
    # Dice = (2 * 0.5 + 1) / (1 + 1 + 1) = 2/3 -> loss 1/3.
    y_true = np.array([1.0, 0.0], dtype=np.float32).reshape(1, 1, 2, 1)
    logits = np.zeros_like(y_true)
    assert value(get_loss("dice", smooth=1.0), y_true, logits) == pytest.approx(1 / 3, rel=1e-6)


def test_dice_near_zero_for_confident_right_answers_including_empty_masks() -> None:
    y_true = np.zeros((2, 8, 8, 2), dtype=np.float32)
    y_true[0, 2:5, 2:5, 0] = 1.0  # image 0 class 0 has a defect, the other pairs are empty
    logits = np.where(y_true > 0, 30.0, -30.0).astype(np.float32)
    assert value(get_loss("dice"), y_true, logits) == pytest.approx(0.0, abs=1e-6)
    assert value(get_loss("bce_dice"), y_true, logits) == pytest.approx(0.0, abs=1e-6)
    wrong = -logits
    assert value(get_loss("dice"), y_true, wrong) > 0.9


def test_bce_dice_is_bce_plus_dice() -> None:
    y_true, logits = batch(2)
    total = value(get_loss("bce_dice", smooth=2.0), y_true, logits)
    parts = value(get_loss("bce"), y_true, logits) + value(
        get_loss("dice", smooth=2.0), y_true, logits
    )
    assert total == pytest.approx(parts, rel=1e-6)


@pytest.mark.parametrize("name", ["bce", "dice", "bce_dice"])
def test_extreme_logits_give_finite_loss_and_gradients(name: str) -> None:
    y_true, _ = batch(3)
    logits = tf.Variable(np.where(y_true > 0, -1e4, 1e4).astype(np.float32))
    loss = get_loss(name)
    with tf.GradientTape() as tape:
        result = loss(y_true, logits)
    gradient = tape.gradient(result, logits)
    assert np.isfinite(result.numpy()) and np.isfinite(gradient.numpy()).all()


def test_one_value_per_image_so_sample_weights_apply() -> None:
    y_true, logits = batch(4)
    for loss in (BinaryCrossentropyLoss(), SoftDiceLoss(), BCEDiceLoss()):
        per_image = keras.ops.convert_to_numpy(loss.call(y_true, logits))
        assert per_image.shape == (3,)
        weighted = loss(y_true, logits, sample_weight=np.array([1.0, 0.0, 0.0], np.float32))
        assert float(weighted) == pytest.approx(per_image[0] / 3, rel=1e-5)


def test_mixed_precision_logits_are_handled_in_float32() -> None:
    y_true, logits = batch(5)
    half = value(get_loss("bce_dice"), y_true, logits.astype(np.float16))
    assert half == pytest.approx(value(get_loss("bce_dice"), y_true, logits), rel=1e-2)


def test_config_round_trip() -> None:
    loss = get_loss("bce_dice", smooth=0.5, pos_weight=[1.0, 3.0])
    again = keras.losses.deserialize(keras.losses.serialize(loss))
    assert isinstance(again, BCEDiceLoss)
    assert (again.smooth, again.pos_weight) == (0.5, [1.0, 3.0])


def test_bad_arguments_fail_clearly() -> None:
    with pytest.raises(ValueError, match="unknown loss 'focal'; valid: bce, dice, bce_dice"):
        get_loss("focal")
    with pytest.raises(ValueError, match="takes no pos_weight"):
        get_loss("dice", pos_weight=[2.0])
    with pytest.raises(ValueError, match="smooth=0"):
        get_loss("dice", smooth=0)
    with pytest.raises(ValueError, match="pos_weight"):
        get_loss("bce", pos_weight=[1.0, -2.0])
    with pytest.raises(ValueError, match="pos_weight has 3 values but the model has 2 classes"):
        y_true, logits = batch()
        get_loss("bce", pos_weight=[1.0, 2.0, 3.0])(y_true, logits)
