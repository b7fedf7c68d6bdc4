"""models.layers: padding to a multiple mirrors the image, at any size."""

from __future__ import annotations

import numpy as np
import pytest

from models.layers import PadToMultiple


def _mirrored(x: np.ndarray, multiple: int) -> np.ndarray:
    """Bottom/right symmetric padding by repeated whole reflections, as NumPy defines it."""
    height, width = x.shape[1:3]
    out = x
    while out.shape[1] < -(-height // multiple) * multiple:
        add = min(out.shape[1], -(-height // multiple) * multiple - out.shape[1])
        out = np.pad(out, ((0, 0), (0, add), (0, 0), (0, 0)), mode="symmetric")
    while out.shape[2] < -(-width // multiple) * multiple:
        add = min(out.shape[2], -(-width // multiple) * multiple - out.shape[2])
        out = np.pad(out, ((0, 0), (0, 0), (0, add), (0, 0)), mode="symmetric")
    return out


@pytest.mark.parametrize("size", [(200, 200), (48, 64), (7, 5), (1, 33), (32, 32)])
def test_padding_mirrors_the_image_up_to_the_multiple(size: tuple[int, int]) -> None:
    rng = np.random.default_rng(0)
    x = rng.random((2, *size, 3)).astype("float32")
    padded = np.asarray(PadToMultiple(32)(x))
    assert padded.shape[1:3] == tuple(-(-s // 32) * 32 for s in size)
    np.testing.assert_array_equal(padded[:, : size[0], : size[1]], x)  # pixels stay put
    np.testing.assert_array_equal(padded, _mirrored(x, 32))
    if padded.shape[1] > size[0]:
        # The first padded row repeats the last image row: no black band.
        np.testing.assert_array_equal(padded[:, size[0], : size[1]], x[:, -1])


def test_a_model_sees_no_zero_band_on_images_that_need_padding() -> None:
    import keras

    inputs = keras.Input((None, None, 1))
    model = keras.Model(inputs, PadToMultiple(32)(inputs))
    image = np.full((1, 200, 200, 1), 0.5, "float32")
    assert float(np.asarray(model(image)).min()) == 0.5
