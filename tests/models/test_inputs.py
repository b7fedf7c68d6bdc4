"""The input contract: every model takes uint8 pixels and scales them itself, exactly as the
input pipeline's float32 path would have; older float32-input checkpoints still run."""

from __future__ import annotations

from pathlib import Path

import keras
import numpy as np
import pytest

import models
from models.inputs import image_input, input_dtype, model_inputs

SMALL = {
    "unet": {"filters": 2, "depth": 2},
    "resunet": {"filters": 2, "depth": 2},
    "invresunet": {"filters": 2, "depth": 2},
    "deeplabv3plus": {"alpha": 0.1, "aspp_filters": 8},
}


@pytest.mark.parametrize("precision", ["float32", "mixed_bfloat16"])
@pytest.mark.parametrize("name", sorted(SMALL))
def test_every_model_takes_uint8_and_scales_it_as_the_pipeline_did(
    name: str, precision: str
) -> None:
    import tensorflow as tf

    from data.transforms import to_float

    model = models.build_model(
        name, input_shape=(None, None, 1), num_classes=2, precision=precision, **SMALL[name]
    )
    assert model.inputs[0].dtype == "uint8" and input_dtype(model) == "uint8"
    scale = model.get_layer("scale")
    assert scale.dtype_policy.compute_dtype == "float32"  # whatever the policy
    pixels = np.arange(256, dtype=np.uint8).reshape(1, 16, 16, 1)
    scaled = keras.ops.convert_to_numpy(scale(pixels))
    masks = tf.zeros((1, 16, 16, 2), tf.uint8)
    expected, _ = to_float(tf.constant(pixels), masks)
    assert scaled.dtype == np.float32
    np.testing.assert_array_equal(scaled, expected.numpy())  # bit for bit
    assert scaled.min() == 0.0 and scaled.max() == 1.0


def test_the_uint8_input_survives_a_checkpoint(tmp_path: Path) -> None:
    model = models.build_model("unet", input_shape=(None, None, 1), num_classes=2, filters=2)
    model.save(tmp_path / "m.keras")
    again = models.load_model(tmp_path / "m.keras")
    assert input_dtype(again) == "uint8"
    pixels = np.random.default_rng(0).integers(0, 256, (1, 24, 40, 1), dtype=np.uint8)
    np.testing.assert_array_equal(
        keras.ops.convert_to_numpy(again(pixels)), keras.ops.convert_to_numpy(model(pixels))
    )


def _float_checkpoint(path: Path) -> keras.Model:
    """A model as checkpoints were written before uint8 inputs: float32 images in [0, 1]."""
    keras.utils.set_random_seed(0)
    inputs = keras.Input((None, None, 1), dtype="float32", name="image")
    outputs = keras.layers.Conv2D(2, 3, padding="same", name="logits")(inputs)
    model = keras.Model(inputs, outputs, name="old")
    model.save(path)
    return models.load_model(path)


def test_an_older_float32_checkpoint_gets_its_pixels_scaled(tmp_path: Path) -> None:
    from search.inference.loading import model_probabilities

    old = _float_checkpoint(tmp_path / "old.keras")
    assert input_dtype(old) == "float32"
    pixels = np.random.default_rng(1).integers(0, 256, (2, 8, 12, 1), dtype=np.uint8)
    fed = model_inputs(old, pixels)
    assert fed.dtype == np.float32
    np.testing.assert_array_equal(fed, pixels.astype(np.float32) * np.float32(1 / 255))
    expected = models.probabilities(keras.ops.convert_to_numpy(old(fed)))
    np.testing.assert_allclose(model_probabilities(old, pixels), expected, atol=1e-6)
    # Fed raw pixels a float model would see 0..255, not [0, 1]: the outputs differ.
    raw = models.probabilities(keras.ops.convert_to_numpy(old(pixels.astype(np.float32))))
    assert np.abs(raw - expected).max() > 0.01


def test_anything_but_uint8_pixels_is_refused() -> None:
    model = models.build_model("unet", input_shape=(None, None, 1), num_classes=2, filters=2)
    scaled = np.zeros((1, 8, 8, 1), np.float32)
    # Keras would cast these floats to uint8 zeros without a word: a black image.
    with pytest.raises(TypeError, match="expected uint8 pixels in 0..255, got float32"):
        model_inputs(model, scaled)
    assert model_inputs(model, scaled.astype(np.uint8)).dtype == np.uint8


def test_a_model_with_another_input_dtype_is_named() -> None:
    inputs = keras.Input((8, 8, 1), dtype="int32", name="image")
    odd = keras.Model(inputs, keras.layers.Conv2D(1, 1)(inputs), name="odd")
    with pytest.raises(ValueError, match="model 'odd' takes int32 images; expected one of"):
        input_dtype(odd)


def test_image_input_names_its_layers() -> None:
    inputs, scaled = image_input((None, None, 1))
    assert inputs.dtype == "uint8" and inputs.name == "image"
    assert scaled.dtype == "float32"
