"""data.rle: Kaggle convention (1-indexed, column-major), round trips and strict validation."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest

from data import rle

SEVERSTAL_H, SEVERSTAL_W = 256, 1600


def test_run_starting_at_one_sets_the_top_left_pixel() -> None:
    mask = rle.decode("1 1", 3, 4)
    expected = np.zeros((3, 4), bool)
    expected[0, 0] = True
    np.testing.assert_array_equal(mask, expected)


def test_runs_go_down_columns_first() -> None:
    # H=3, W=4: positions 1..3 are column 0, 4..6 column 1. "2 3" covers (1,0), (2,0), (0,1).
    mask = rle.decode("2 3", 3, 4)
    assert sorted(zip(*np.nonzero(mask), strict=True)) == [(0, 1), (1, 0), (2, 0)]


def test_last_pixel_is_bottom_right() -> None:
    mask = rle.decode("12 1", 3, 4)
    assert mask[2, 3] and mask.sum() == 1


def test_encode_of_hand_made_mask() -> None:
    mask = np.zeros((3, 4), bool)
    mask[0, 0] = mask[1, 0] = True  # positions 1, 2
    mask[2, 2] = True  # position 2*3 + 2 + 1 = 9
    assert rle.encode(mask) == "1 2 9 1"
    assert rle.encode(np.zeros((5, 5), bool)) == ""
    assert rle.encode(np.ones((2, 2), np.uint8)) == "1 4"


def test_empty_string_is_empty_mask() -> None:
    assert not rle.decode("", 256, 1600).any()
    assert rle.decode("", 256, 1600).shape == (256, 1600)


def test_round_trip_every_row_of_the_7179_image_labels(severstal_labels: Path) -> None:
    # Real masks: 7,179 training images x 4 classes, 4,379 of the rows with a defect
    # (SOURCES.md: 562 / 154 / 3,173 / 490 per class). Every row must survive decode ->
    # encode unchanged, and every 10th defect mask must decode as the independent loop does.
    path = severstal_labels / "train_7179_old_format.csv"
    with path.open(newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == 28_716
    per_class = [0, 0, 0, 0]
    checked = 0
    for number, row in enumerate(rows, start=2):
        text = row["EncodedPixels"]
        mask = rle.decode(text, SEVERSTAL_H, SEVERSTAL_W, where=f"{path.name} row {number}")
        assert rle.encode(mask) == text, f"row {number} did not round-trip"
        if text:
            assert mask.sum() == rle.area(text) > 0
            per_class[int(row["ImageId_ClassId"].rsplit("_", 1)[1]) - 1] += 1
            if sum(per_class) % 10 == 1:
                loop = rle.decode_loop(text, SEVERSTAL_H, SEVERSTAL_W)
                np.testing.assert_array_equal(loop, mask, err_msg=f"row {number}")
                checked += 1
    assert per_class == [562, 154, 3_173, 490]
    assert checked == 438


def test_round_trip_and_loop_codec_agree_on_real_sample_masks(severstal_sample: Path) -> None:
    with (severstal_sample / "train.csv").open(newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert rows, "the sample train.csv has defect rows"
    for row in rows:
        text = row["EncodedPixels"]
        mask = rle.decode(text, SEVERSTAL_H, SEVERSTAL_W)
        assert mask.any()
        assert rle.encode(mask) == text
        np.testing.assert_array_equal(rle.decode_loop(text, SEVERSTAL_H, SEVERSTAL_W), mask)
        assert rle.encode_loop(mask) == text
        assert rle.area(text) == int(mask.sum())


@pytest.mark.parametrize("shape", [(1, 1), (7, 5), (64, 33), (256, 1600)])
def test_round_trip_random_masks(shape: tuple[int, int]) -> None:
    rng = np.random.default_rng(sum(shape))
    for density in (0.0, 0.05, 0.5, 1.0):
        mask = rng.random(shape) < density
        text = rle.encode(mask)
        np.testing.assert_array_equal(rle.decode(text, *shape), mask)
        assert rle.encode_loop(mask) == text


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("1 2 3", "odd count of numbers (3)"),
        ("1 a", "'a' is not an integer"),
        ("1.5 2", "'1.5' is not an integer"),
        ("0 3", "starts at 0; starts are 1-indexed"),
        ("-4 3", "starts at -4"),
        ("5 0", "has length 0"),
        ("20 2", "ends at 21, past H*W = 20"),
        (
            "10 5 12 3",
            "run 2 starts at 12 but run 1 covers up to 14: runs overlap or are out of order",
        ),
        ("10 2 3 2", "run 2 starts at 3 but run 1 covers up to 11"),
    ],
)
def test_malformed_strings_name_image_and_class(text: str, problem: str) -> None:
    where = "train.csv row 12, image 0002cc93b.jpg, class 1"
    with pytest.raises(rle.RLEError) as info:
        rle.decode(text, 4, 5, where=where)
    assert str(info.value).startswith(where + ": malformed RLE")
    assert problem in str(info.value)


def test_encode_rejects_non_2d() -> None:
    with pytest.raises(ValueError, match=r"2-D \(H, W\) mask, got shape \(2, 2, 2\)"):
        rle.encode(np.zeros((2, 2, 2)))
