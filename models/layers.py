"""Registered custom layers that let every model take any H x W and still reload in safe mode.

Lambda layers cannot be reloaded with `safe_mode=True`, and built-in ZeroPadding2D/Cropping2D
need static sizes, which a model with `None` spatial dims does not have. These layers compute
their padding from the runtime shape instead.

Everything here is `keras.ops`, so the models run on any Keras backend: under TensorFlow a
runtime size is a scalar tensor, under JAX (which traces one program per input shape) a
Python int.
"""

from __future__ import annotations

import keras
from keras import ops

__all__ = ["BroadcastToMatch", "CropToMatch", "DilatedConv2D", "PadToMultiple", "ResizeToMatch"]

_PACKAGE = "steelseg"


def _round_up(size: int | None, multiple: int) -> int | None:
    return None if size is None else -(-size // multiple) * multiple


def _minimum(a, b):
    """min() of two sizes: Python ints stay ints (JAX needs static pad widths)."""
    if isinstance(a, int) and isinstance(b, int):
        return min(a, b)
    return ops.minimum(a, b)


@keras.saving.register_keras_serializable(package=_PACKAGE)
class PadToMultiple(keras.layers.Layer):
    """Pads H and W at the bottom/right up to a multiple, so pixel (i, j) stays at (i, j).

    The padding mirrors the image (symmetric: the last rows and columns repeated in reverse),
    not zeros. A model trained on crops whose sides are already multiples (no padding) and
    then run on whole images that are not (NEU-Seg: 128x128 crops, 200x200 images padded to
    224) met a black band it never saw in training: a U-Net f8 scoring 0.68 on NEU-Seg val
    with mirrored padding scored 0.40, below predicting nothing (0.60), with zeros.
    """

    def __init__(self, multiple: int, **kwargs):
        super().__init__(**kwargs)
        if not isinstance(multiple, int) or multiple < 1:
            raise ValueError(f"PadToMultiple: multiple must be a positive int, got {multiple!r}")
        self.multiple = multiple

    def call(self, inputs):
        shape = ops.shape(inputs)
        pad_h = (-shape[1]) % self.multiple
        pad_w = (-shape[2]) % self.multiple
        # A symmetric pad can add at most the current size; a side smaller than the padding
        # it needs (under `multiple` pixels) takes a few rounds. Rounds with nothing to add
        # pad by zero rows and cost a copy of a one-channel image (TensorFlow; under JAX the
        # sizes are known and such rounds are skipped).
        x, height, width = inputs, shape[1], shape[2]
        for _ in range(max(1, self.multiple.bit_length())):
            add_h, add_w = _minimum(pad_h, height), _minimum(pad_w, width)
            if isinstance(add_h, int) and isinstance(add_w, int) and add_h == add_w == 0:
                break
            x = ops.pad(x, [[0, 0], [0, add_h], [0, add_w], [0, 0]], mode="symmetric")
            pad_h, pad_w = pad_h - add_h, pad_w - add_w
            height, width = height + add_h, width + add_w
        return x

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


def _resize_axis(x, axis: int, size):
    """Bilinear resize of `x` along `axis` to `size`, with half-pixel centres.

    Output pixel d samples the input at (d + 0.5) * in / out - 0.5, clamped to the edges:
    tf.image.resize(method="bilinear") and jax.image.resize without antialiasing (this is
    used to upsample) compute the same.
    """
    length = ops.shape(x)[axis]
    source = (ops.arange(size, dtype="float32") + 0.5) * (
        ops.cast(length, "float32") / ops.cast(size, "float32")
    ) - 0.5
    source = ops.clip(source, 0.0, ops.cast(length, "float32") - 1.0)
    low = ops.floor(source)
    weight = ops.cast(source - low, x.dtype)
    low = ops.cast(low, "int32")
    high = ops.minimum(low + 1, ops.cast(length, "int32") - 1)
    shape = [1, 1, 1, 1]
    shape[axis] = -1
    weight = ops.reshape(weight, shape)
    first, second = ops.take(x, low, axis=axis), ops.take(x, high, axis=axis)
    return first + (second - first) * weight


@keras.saving.register_keras_serializable(package=_PACKAGE)
class ResizeToMatch(keras.layers.Layer):
    """Bilinear resize of [x, reference] to reference's H x W.

    Keras' bilinear UpSampling2D needs static sizes (it fails once tf.function relaxes them to
    None), so DeepLabV3+'s upsampling resizes to the reference's runtime size.
    """

    def call(self, inputs):
        features, reference = inputs
        shape = ops.shape(reference)
        # Not ops.image.resize: under TensorFlow it checks the size in Python, which a
        # runtime size (a tensor) fails inside tf.function.
        return _resize_axis(_resize_axis(features, 1, shape[1]), 2, shape[2])

    def compute_output_shape(self, input_shape):
        features, reference = input_shape
        return (features[0], reference[1], reference[2], features[3])


@keras.saving.register_keras_serializable(package=_PACKAGE)
class DilatedConv2D(keras.layers.Conv2D):
    """A "same"-padded, stride-1 dilated Conv2D computed as one matmul over shifted copies.

    The same weights and the same output as `Conv2D(dilation_rate=d, padding="same")`, but
    TensorFlow's CPU kernels run a dilated convolution through space_to_batch, which on
    MCAD's small bottleneck maps costs 55x an undilated one (a 7x7x256 map at dilation 12:
    1.87 s against 0.034 s forward and backward, batch 16). Here each of the kh*kw taps is a
    shifted slice of the zero-padded input; the slices are stacked along channels and
    multiplied by the kernel reshaped to (kh*kw*C_in, C_out), one GEMM like an im2col
    convolution. Its memory is kh*kw times the input, which is small where MCAD sits.
    """

    def __init__(self, filters, kernel_size, **kwargs):
        super().__init__(filters, kernel_size, **kwargs)
        if self.padding != "same" or tuple(self.strides) != (1, 1) or self.groups != 1:
            raise ValueError(
                f"DilatedConv2D {self.name}: supports padding='same', strides 1 and groups 1; "
                f"got padding={self.padding!r}, strides={self.strides}, groups={self.groups}"
            )
        if self.data_format != "channels_last":
            raise ValueError(f"DilatedConv2D {self.name}: supports channels_last only")

    def convolution_op(self, inputs, kernel):
        rate_y, rate_x = self.dilation_rate
        size_y, size_x = self.kernel_size
        if (rate_y, rate_x) == (1, 1):
            return super().convolution_op(inputs, kernel)
        # "same" padding of a dilated kernel: the effective size minus one, split like Keras.
        reach_y, reach_x = (size_y - 1) * rate_y, (size_x - 1) * rate_x
        pad = [[0, 0], [reach_y // 2, reach_y - reach_y // 2]]
        pad += [[reach_x // 2, reach_x - reach_x // 2], [0, 0]]
        padded = ops.pad(inputs, pad)
        shape = ops.shape(inputs)
        taps = [
            ops.slice(
                padded,
                [0, i * rate_y, j * rate_x, 0],
                [shape[0], shape[1], shape[2], shape[3]],
            )
            for i in range(size_y)
            for j in range(size_x)
        ]
        stacked = ops.concatenate(taps, axis=-1)
        # kernel (kh, kw, C_in, C_out) row-major matches the taps' (i, j, channel) order.
        flat = ops.reshape(kernel, (size_y * size_x * kernel.shape[2], kernel.shape[3]))
        return ops.matmul(stacked, flat)
