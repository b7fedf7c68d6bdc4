"""data.bench: its baseline decoder is a correct Kaggle decoder, and the codec figures exist."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest

from data import rle
from data.bench import HEIGHT, WIDTH, codec_figures, main, naive_batches, paper_rle_decode
from data.config import ConfigError


def test_paper_decoder_matches_the_codec_on_real_rows(severstal_sample: Path) -> None:
    with (severstal_sample / "train.csv").open(newline="") as handle:
        texts = [r["EncodedPixels"] for r in csv.DictReader(handle)]
    for text in texts:
        np.testing.assert_array_equal(
            paper_rle_decode(text, HEIGHT, WIDTH), rle.decode(text, HEIGHT, WIDTH)
        )


def test_naive_batches_hold_the_same_tensors_as_the_labels(severstal_sample: Path) -> None:
    images, masks = next(naive_batches(severstal_sample, 2))
    assert images.shape == (2, HEIGHT, WIDTH, 1) and masks.shape == (2, HEIGHT, WIDTH, 4)
    assert images.dtype == masks.dtype == np.float32 and 0 <= images.min() <= images.max() <= 1
    assert masks[0].sum() > 0  # the first sample image, 000a4bcdd.jpg, has a class-1 defect


def test_codec_figures_are_positive(severstal_sample: Path) -> None:
    figures = codec_figures(severstal_sample)
    assert set(figures) == {
        "rle_decode_us",
        "rle_decode_loop_us",
        "rle_encode_us",
        "rle_encode_loop_us",
    }
    assert all(v > 0 for v in figures.values())


def test_cli_refuses_a_folder_without_kaggle_files_and_bad_numbers(
    severstal_sample: Path, tmp_path: Path
) -> None:
    with pytest.raises(ConfigError, match="^root=.*: expected a Kaggle folder with train.csv"):
        main([f"root={tmp_path}"])
    with pytest.raises(ConfigError, match="batch_size=0: must be >= 1"):
        main([f"root={severstal_sample}", "batch_size=0"])
    with pytest.raises(ConfigError, match="seconds=0.0: must be > 0"):
        main([f"root={severstal_sample}", "seconds=0"])
    with pytest.raises(ConfigError, match="batch-size: unknown key; valid keys: root, seconds"):
        main(["batch-size=8"])
