"""The one input convention: a model takes uint8 grey images (B, H, W, 1) in 0..255 and scales
them itself, on whatever device runs it.

Scaling on the CPU before the model wrote a float32 copy of every image (and the input
pipeline four float32 masks beside it): 8.2 MB a 256x1600 sample, work a GPU does in
microseconds. The model's first layer, `scale`, computes exactly what the pipeline's float32
path computes (`data.transforms.to_float`: cast to float32, times float32(1/255)), so a model
sees the same numbers either way.

Checkpoints written before this convention take float32 images in [0, 1]: `input_dtype` says
which a model takes, and `model_inputs` turns uint8 pixels into what it takes, so promotion,
`search.predict` and a resumed trial of an older search still run them.
"""

from __future__ import annotations

from typing import Any

import keras
import numpy as np

__all__ = ["IMAGE_DTYPE", "INPUT_DTYPES", "image_input", "input_dtype", "model_inputs"]

IMAGE_DTYPE = "uint8"
INPUT_DTYPES = ("uint8", "float32")  # float32: a checkpoint from before uint8 inputs


def image_input(input_shape: tuple[int | None, int | None, int]) -> tuple[Any, Any]:
    """The model's input (uint8, named "image") and that input scaled to float32 in [0, 1]."""
    inputs = keras.Input(shape=input_shape, dtype=IMAGE_DTYPE, name="image")
    # float32 whatever the precision policy: the first layer that computes in bfloat16 or
    # float16 casts it, as it cast the float32 images the pipeline used to deliver.
    scaled = keras.layers.Rescaling(1.0 / 255.0, dtype="float32", name="scale")(inputs)
    return inputs, scaled


def input_dtype(model: Any) -> str:
    """ "uint8" (this convention) or "float32" (an older checkpoint): the dtype the input
    pipeline should deliver to `model`. Any other input dtype is refused, naming it."""
    dtype = keras.backend.standardize_dtype(model.inputs[0].dtype)
    if dtype not in INPUT_DTYPES:
        raise ValueError(
            f"model {model.name!r} takes {dtype} images; expected one of {', '.join(INPUT_DTYPES)}"
        )
    return dtype


def model_inputs(model: Any, pixels: np.ndarray) -> np.ndarray:
    """uint8 pixels (B, H, W, 1) as `model` takes them: unchanged, or float32 in [0, 1] for an
    older checkpoint. Anything but uint8 is refused: Keras would cast floats in [0, 1] to
    uint8 zeros and ones without a word, and the model would see a black image."""
    if pixels.dtype != np.uint8:
        raise TypeError(f"expected uint8 pixels in 0..255, got {pixels.dtype}")
    if input_dtype(model) == "uint8":
        return pixels
    return pixels.astype(np.float32) * np.float32(1.0 / 255.0)
