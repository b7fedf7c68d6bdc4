"""Kaggle Dice on hand-computed masks, on real Severstal masks, and the Keras metric agreeing."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest

from data.rle import decode
from models.metrics import (
    KaggleDice,
    PerClassDice,
    dice_metrics,
    kaggle_dice,
    pair_dice,
    per_class_dice,
)

HEIGHT, WIDTH, CLASSES = 256, 1600, 4


def masks(*pixel_lists: list[tuple[int, int]], shape: tuple[int, int] = (3, 3)) -> np.ndarray:
    """(1, H, W, C) bool masks, one list of set (row, col) pixels per class."""
    out = np.zeros((1, *shape, len(pixel_lists)), dtype=bool)
    for channel, pixels in enumerate(pixel_lists):
        for row, col in pixels:
            out[0, row, col, channel] = True
    return out


def test_empty_prediction_of_empty_mask_scores_one_and_zero_in_paper_variant() -> None:
    empty = masks([])
    assert kaggle_dice(empty, empty) == 1.0
    assert kaggle_dice(empty, empty, paper_variant=True) == 0.0


def test_empty_against_non_empty_scores_zero_either_way() -> None:
    assert kaggle_dice(masks([]), masks([(0, 0)])) == 0.0
    assert kaggle_dice(masks([(1, 1), (2, 2)]), masks([])) == 0.0


def test_all_ones_identical_scores_one() -> None:
    ones = np.ones((2, 3, 3, 2), dtype=bool)
    assert kaggle_dice(ones, ones) == 1.0


def test_partial_overlap_by_hand() -> None:
    # X = 3 pixels, Y = 2 pixels, overlap 1 -> 2*1/(3+2) = 0.4
    truth = masks([(0, 0), (0, 1), (0, 2)])
    pred = masks([(0, 2), (2, 2)])
    assert kaggle_dice(truth, pred) == pytest.approx(0.4)


def test_mean_is_over_every_image_class_pair() -> None:
    # class 0: overlap 0.4; class 1: empty/empty = 1 -> mean 0.7; paper variant -> 0.2
    truth = masks([(0, 0), (0, 1), (0, 2)], [])
    pred = masks([(0, 2), (2, 2)], [])
    assert kaggle_dice(truth, pred) == pytest.approx(0.7)
    assert kaggle_dice(truth, pred, paper_variant=True) == pytest.approx(0.2)
    np.testing.assert_allclose(per_class_dice(truth, pred), [0.4, 1.0])


def test_bad_inputs_are_named() -> None:
    with pytest.raises(ValueError, match="y_true has shape"):
        kaggle_dice(np.zeros((3, 3, 1)), np.zeros((3, 3, 1)))
    with pytest.raises(ValueError, match="values other than 0/1"):
        kaggle_dice(np.zeros((1, 3, 3, 1)), np.full((1, 3, 3, 1), 0.7))
    with pytest.raises(ValueError, match=r"but y_pred has shape"):
        kaggle_dice(np.zeros((1, 3, 3, 1)), np.zeros((1, 3, 3, 2)))


def severstal_sample_masks(root: Path) -> tuple[np.ndarray, int]:
    """(N, 256, 1600, 4) masks of every sample image, and the number of non-empty pairs in the CSV."""
    images = sorted(p.name for p in (root / "train_images").glob("*.jpg"))
    out = np.zeros((len(images), HEIGHT, WIDTH, CLASSES), dtype=bool)
    rows = 0
    with (root / "train.csv").open(newline="") as handle:
        for number, row in enumerate(csv.DictReader(handle), start=2):
            index, channel = images.index(row["ImageId"]), int(row["ClassId"]) - 1
            where = f"train.csv row {number}"
            out[index, ..., channel] = decode(row["EncodedPixels"], HEIGHT, WIDTH, where=where)
            rows += 1
    return out, rows


def test_real_severstal_masks(severstal_sample: Path) -> None:
    truth, non_empty_pairs = severstal_sample_masks(severstal_sample)
    pairs = truth.shape[0] * CLASSES
    assert kaggle_dice(truth, truth) == 1.0
    # An all-empty submission scores exactly the share of empty (image, class) pairs.
    empty = np.zeros_like(truth)
    assert kaggle_dice(truth, empty) == pytest.approx((pairs - non_empty_pairs) / pairs)
    assert kaggle_dice(truth, empty, paper_variant=True) == 0.0
    # Shifting every mask right by 8 px: each pair's Dice computed independently by set overlap.
    shifted = np.zeros_like(truth)
    shifted[:, :, 8:, :] = truth[:, :, :-8, :]
    expected = []
    for image in range(truth.shape[0]):
        for channel in range(CLASSES):
            x = set(zip(*np.nonzero(truth[image, ..., channel]), strict=True))
            y = set(zip(*np.nonzero(shifted[image, ..., channel]), strict=True))
            expected.append(1.0 if not x and not y else 2 * len(x & y) / (len(x) + len(y)))
    assert kaggle_dice(truth, shifted) == pytest.approx(np.mean(expected))
    assert 0.0 < kaggle_dice(truth, shifted) < 1.0


def test_all_empty_submission_on_the_full_severstal_training_labels(severstal_labels: Path) -> None:
    # The 12,568 images' defect flags as 1x1 masks: the all-empty score only needs emptiness.
    path = severstal_labels / "defect_flags_12568.csv"
    with path.open(newline="") as handle:
        flags = np.array(
            [[row[str(c)] == "1" for c in range(1, 5)] for row in csv.DictReader(handle)]
        )
    truth = flags.reshape(-1, 1, 1, CLASSES)
    # SOURCES.md: 12,568 images; images per class 897 / 247 / 5,150 / 801.
    assert truth.shape[0] == 12568
    expected = 1 - (897 + 247 + 5150 + 801) / (4 * 12568)
    assert kaggle_dice(truth, np.zeros_like(truth)) == pytest.approx(expected)
    np.testing.assert_allclose(
        per_class_dice(truth, np.zeros_like(truth)), 1 - np.array([897, 247, 5150, 801]) / 12568
    )


def logits_from(masks_: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Logits whose sigmoid > 0.5 is `masks_`, magnitudes random so the threshold really matters."""
    magnitude = rng.uniform(0.01, 6.0, size=masks_.shape).astype(np.float32)
    return np.where(masks_, magnitude, -magnitude)


def test_keras_metric_equals_numpy_on_real_masks_over_batches(severstal_sample: Path) -> None:
    truth, _ = severstal_sample_masks(severstal_sample)
    truth = truth[:, ::4, ::4, :]  # smaller arrays; the masks stay real
    rng = np.random.default_rng(0)
    pred = np.zeros_like(truth)
    pred[:, :, 3:, :] = truth[:, :, :-3, :]
    pred[5] = False
    pred[6, :4, :4, 0] = True  # a false positive on a possibly empty pair
    logits = logits_from(pred, rng)
    metric = KaggleDice()
    per_class = [PerClassDice(index) for index in range(CLASSES)]
    for batch in (slice(0, 7), slice(7, 15), slice(15, None)):
        for m in (metric, *per_class):
            m.update_state(truth[batch].astype(np.float32), logits[batch])
    assert float(metric.result()) == pytest.approx(kaggle_dice(truth, pred), abs=1e-6)
    np.testing.assert_allclose(
        [float(m.result()) for m in per_class], per_class_dice(truth, pred), atol=1e-6
    )
    metric.reset_state()
    metric.update_state(truth[:1].astype(np.float32), logits[:1])
    assert float(metric.result()) == pytest.approx(pair_dice(truth[:1], pred[:1]).mean(), abs=1e-6)


def test_keras_metric_threshold_applies_to_probabilities() -> None:
    truth = masks([(0, 0), (0, 1)]).astype(np.float32)
    logits = np.full(truth.shape, -5.0, dtype=np.float32)
    logits[0, 0, 0, 0] = 2.0  # p = 0.88
    logits[0, 0, 1, 0] = 0.5  # p = 0.62
    low, high = KaggleDice(threshold=0.5), KaggleDice(threshold=0.7)
    low.update_state(truth, logits)
    high.update_state(truth, logits)
    assert float(low.result()) == pytest.approx(1.0)
    assert float(high.result()) == pytest.approx(2 * 1 / (2 + 1))
    # A probability of exactly the threshold counts as a defect (>=, as
    # search.promotion.postprocess).
    edge = KaggleDice()
    edge.update_state(truth, np.where(truth > 0, 0.0, -5.0).astype(np.float32))
    assert float(edge.result()) == pytest.approx(1.0)


def test_dice_metrics_names_and_validation() -> None:
    names = [m.name for m in dice_metrics(["inclusion", "patches"])]
    assert names == ["kaggle_dice", "dice_inclusion", "dice_patches"]
    with pytest.raises(ValueError, match="distinct"):
        dice_metrics(["a", "a"])
    with pytest.raises(ValueError, match="threshold"):
        KaggleDice(threshold=1.5)
    metric = PerClassDice(3)
    with pytest.raises(ValueError, match="class_index 3 but the model has 2 classes"):
        metric.update_state(np.zeros((1, 2, 2, 2), np.float32), np.zeros((1, 2, 2, 2), np.float32))
