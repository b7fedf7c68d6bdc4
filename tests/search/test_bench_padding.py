"""search.bench.padding: the same weights scored with mirrored and with zero padding."""

from __future__ import annotations

import numpy as np
import pytest

from data.config import ConfigError


@pytest.fixture(scope="module")
def unet_depth4():
    import keras

    import models

    keras.utils.set_random_seed(3)
    return models.build_model(
        "unet", input_shape=(None, None, 1), num_classes=2, filters=4, depth=4, activation="relu"
    )


def _images(size: int, count: int = 3) -> np.ndarray:
    rng = np.random.default_rng(size)
    return rng.integers(60, 200, (count, size, size), dtype=np.uint8)


def test_the_model_multiple_is_read_from_its_padding_layer(unet_depth4) -> None:
    from search.bench.padding import model_multiple

    assert model_multiple(unet_depth4) == 16


def test_zeros_reach_the_model_only_where_it_pads(unet_depth4) -> None:
    from search.bench.padding import padded_probabilities

    for size, pads in ((32, False), (40, True)):
        batch = _images(size)[..., None]
        mirrored = padded_probabilities(unet_depth4, batch, "mirrored")
        zeros = padded_probabilities(unet_depth4, batch, "zeros")
        assert mirrored.shape == zeros.shape == (3, size, size, 2)
        difference = np.abs(mirrored - zeros)
        if pads:
            # The zero band sits below and right of the image: the far corner feels it most.
            assert difference[:, -4:, -4:].max() > 1e-4
            assert difference[:, :4, :4].max() < difference[:, -4:, -4:].max()
        else:
            np.testing.assert_array_equal(mirrored, zeros)


def test_scores_include_predict_nothing_on_the_same_images(unet_depth4) -> None:
    from search.bench.padding import score_padding

    images = _images(32, count=4)
    masks = np.zeros((4, 32, 32, 2), bool)
    masks[0, 3:9, 3:9, 0] = True
    masks[2, :, :5, 1] = True
    scores = score_padding(unet_depth4, images, masks, batch_size=3)
    # 8 (image, class) pairs, 2 with a defect: predicting nothing scores the other 6.
    assert scores["predict_nothing"] == pytest.approx(6 / 8)
    assert scores["mirrored"] == scores["zeros"]  # 32 is a multiple of 16: nothing is padded
    assert 0.0 <= scores["mirrored"] <= 1.0


def test_bad_arguments_are_named(tmp_path) -> None:
    from search.bench.padding import main

    with pytest.raises(ConfigError, match="model=... \\(required\\)"):
        main([f"shards={tmp_path}"])
    with pytest.raises(ConfigError, match="batch_size=0"):
        main([f"model={tmp_path / 'm.keras'}", f"shards={tmp_path}", "batch_size=0"])
    with pytest.raises(ConfigError, match="m.keras does not exist"):
        main([f"model={tmp_path / 'm.keras'}", f"shards={tmp_path}"])
