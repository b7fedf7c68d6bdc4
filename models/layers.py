"""Registered custom layers that let every model take any H x W and still reload in safe mode.

Lambda layers cannot be reloaded with `safe_mode=True`, and built-in ZeroPadding2D/Cropping2D
need static sizes, which a model with `None` spatial dims does not have. These layers compute
their padding from the runtime shape instead.
"""

from __future__ import annotations

import keras
import tensorflow as tf
from keras import ops

__all__ = ["BroadcastToMatch", "CropToMatch", "PadToMultiple", "ResizeToMatch"]

_PACKAGE = "steelseg"


def _round_up(size: int | None, multiple: int) -> int | None:
    return None if size is None else -(-size // multiple) * multiple


@keras.saving.register_keras_serializable(package=_PACKAGE)
class PadToMultiple(keras.layers.Layer):
    """Zero-pads H and W at the bottom/right up to a multiple, so pixel (i, j) stays at (i, j)."""

    def __init__(self, multiple: int, **kwargs):
        super().__init__(**kwargs)
        if not isinstance(multiple, int) or multiple < 1:
            raise ValueError(f"PadToMultiple: multiple must be a positive int, got {multiple!r}")
        self.multiple = multiple

    def call(self, inputs):
        shape = ops.shape(inputs)
        pad_h = (-shape[1]) % self.multiple
        pad_w = (-shape[2]) % self.multiple
        return ops.pad(inputs, [[0, 0], [0, pad_h], [0, pad_w], [0, 0]])

    def compute_output_shape(self, input_shape):
        batch, height, width, channels = input_shape
        return (batch, _round_up(height, self.multiple), _round_up(width, self.multiple), channels)

    def get_config(self):
        return {**super().get_config(), "multiple": self.multiple}


@keras.saving.register_keras_serializable(package=_PACKAGE)
class CropToMatch(keras.layers.Layer):
    """Crops [x, reference] to reference's H x W from the top-left: undoes PadToMultiple."""

    def call(self, inputs):
        features, reference = inputs
        shape = ops.shape(reference)
        return features[:, : shape[1], : shape[2], :]

    def compute_output_shape(self, input_shape):
        features, reference = input_shape
        return (features[0], reference[1], reference[2], features[3])


@keras.saving.register_keras_serializable(package=_PACKAGE)
class BroadcastToMatch(keras.layers.Layer):
    """Broadcasts [x (B,1,1,C), reference (B,H,W,*)] to (B,H,W,C): ASPP's image-pooling branch."""

    def call(self, inputs):
        pooled, reference = inputs
        return pooled * ops.ones_like(reference[..., :1], dtype=pooled.dtype)

    def compute_output_shape(self, input_shape):
        pooled, reference = input_shape
        return (pooled[0], reference[1], reference[2], pooled[3])


@keras.saving.register_keras_serializable(package=_PACKAGE)
class ResizeToMatch(keras.layers.Layer):
    """Bilinear resize of [x, reference] to reference's H x W.

    Keras' bilinear UpSampling2D needs static sizes (it fails once tf.function relaxes them to
    None), so DeepLabV3+'s upsampling goes through tf.image.resize with the runtime size.
    """

    def call(self, inputs):
        features, reference = inputs
        size = tf.shape(reference)[1:3]
        resized = tf.image.resize(features, size, method="bilinear")
        return tf.cast(resized, features.dtype)  # resize returns float32 even for float16 input

    def compute_output_shape(self, input_shape):
        features, reference = input_shape
        return (features[0], reference[1], reference[2], features[3])
