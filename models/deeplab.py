"""DeepLabV3+ with a MobileNetV2 backbone of width `alpha`, for one grey input channel.

The backbone is built here rather than taken from keras.applications: DeepLabV3 needs the last
stages dilated instead of strided (output stride 16) and the stride-4 features by name, and
nothing here can ever download weights. Unlike the paper's code, the head
emits logits and every loss here expects logits.
"""

from __future__ import annotations

import keras
from keras import layers

from models.blocks import (
    batch_norm_layer,
    inverted_residual_block,
    make_divisible,
    separable_conv_bn,
)
from models.hparams import HParam, output_prior_hparam, precision_hparam
from models.inputs import image_input
from models.layers import BroadcastToMatch, CropToMatch, PadToMultiple, ResizeToMatch
from models.outputs import logits_head

__all__ = ["HPARAMS", "build_deeplabv3plus", "mobilenet_v2_backbone"]

OUTPUT_STRIDE = 16
ASPP_RATES = (6, 12, 18)  # DeepLabV3's rates at output stride 16
LOW_LEVEL_FILTERS = 48

# MobileNetV2's table (expansion t, width c, repeats n, stride s); strides beyond the output
# stride become dilations.
_MOBILENET_V2 = (
    (1, 16, 1, 1),
    (6, 24, 2, 2),
    (6, 32, 3, 2),
    (6, 64, 4, 2),
    (6, 96, 3, 1),
    (6, 160, 3, 2),
    (6, 320, 1, 1),
)

HPARAMS: dict[str, HParam] = {
    "alpha": HParam(
        "alpha",
        float,
        0.5,
        "MobileNetV2 width multiplier; every width goes through make_divisible(c * alpha, 8).",
        low=0.0,
        high=1.0,
        low_open=True,
        paper=(0.1, 0.25, 0.5, 0.75),
    ),
    "aspp_filters": HParam(
        "aspp_filters",
        int,
        256,
        "Width of the ASPP branches and the decoder (DeepLabV3+: 256).",
        low=8,
        high=1024,
    ),
    "output_prior": output_prior_hparam(),
    "precision": precision_hparam(),
}


def mobilenet_v2_backbone(x, *, alpha: float):
    """(features at stride 16, low-level features at stride 4) of a MobileNetV2 of width alpha."""
    x = layers.Conv2D(
        make_divisible(32 * alpha), 3, strides=2, padding="same", use_bias=False, name="stem_conv"
    )(x)
    x = batch_norm_layer(name="stem_bn")(x)
    x = layers.ReLU(max_value=6.0, name="stem_relu")(x)
    stride, dilation, block_id, low_level = 2, 1, 0, None
    for expansion, width, repeats, first_stride in _MOBILENET_V2:
        filters = make_divisible(int(width * alpha))
        for repeat in range(repeats):
            block_stride, block_dilation = (first_stride if repeat == 0 else 1), dilation
            if block_stride == 2 and stride == OUTPUT_STRIDE:
                # Past the output stride: keep the resolution and dilate the later blocks
                # instead (this block still sees the undilated spacing, as in DeepLabV3).
                block_stride, dilation = 1, dilation * 2
            stride *= block_stride
            x = inverted_residual_block(
                x,
                filters,
                expansion=expansion,
                stride=block_stride,
                dilation=block_dilation,
                name=f"block_{block_id}",
            )
            block_id += 1
        if stride == 4 and low_level is None:
            low_level = x
    return x, low_level


def _aspp(x, *, filters: int):
    branches = [_conv_bn_relu(x, filters, name="aspp_1x1")]
    branches += [
        separable_conv_bn(x, filters, dilation=rate, name=f"aspp_rate{rate}") for rate in ASPP_RATES
    ]
    pooled = layers.GlobalAveragePooling2D(keepdims=True, name="aspp_pool")(x)
    # No batch norm on the 1x1 pooled map: with batch size 1 its variance is 0 and BN zeroes it.
    pooled = layers.Conv2D(filters, 1, activation="relu", name="aspp_pool_conv")(pooled)
    branches.append(BroadcastToMatch(name="aspp_pool_broadcast")([pooled, x]))
    x = layers.Concatenate(name="aspp_concat")(branches)
    return _conv_bn_relu(x, filters, name="aspp_project")


def _conv_bn_relu(x, filters: int, *, name: str):
    x = layers.Conv2D(filters, 1, use_bias=False, name=f"{name}_conv")(x)
    x = batch_norm_layer(name=f"{name}_bn")(x)
    return layers.ReLU(name=f"{name}_relu")(x)


def build_deeplabv3plus(
    *,
    input_shape: tuple[int | None, int | None, int],
    num_classes: int,
    alpha: float,
    aspp_filters: int,
    output_prior: float,
) -> keras.Model:
    """MobileNetV2 -> ASPP -> x4 upsample + low-level skip -> two separable convs -> logits -> x4."""
    inputs, scaled = image_input(input_shape)
    padded = PadToMultiple(OUTPUT_STRIDE, name="pad")(scaled)
    features, low_level = mobilenet_v2_backbone(padded, alpha=alpha)
    x = _aspp(features, filters=aspp_filters)
    # Padding to the output stride makes these exact x4 upsamplings.
    skip = _conv_bn_relu(low_level, LOW_LEVEL_FILTERS, name="decoder_low_level")
    x = ResizeToMatch(name="decoder_up4")([x, skip])
    x = layers.Concatenate(name="decoder_concat")([x, skip])
    x = separable_conv_bn(x, aspp_filters, name="decoder_sep1")
    x = separable_conv_bn(x, aspp_filters, name="decoder_sep2")
    # As in DeepLabV3+, classify at stride 4 and upsample the logits. Upsampling the
    # 256-channel features and classifying at full size instead cost 4 s of a 6 s CPU step
    # (alpha 0.25, batch 16, 200x200), for the same parameters.
    x = logits_head(x, num_classes=num_classes, prior=output_prior, name="logits_stride4")
    x = ResizeToMatch(name="decoder_up_final")([x, padded])
    outputs = CropToMatch(name="logits", dtype="float32")([x, scaled])
    return keras.Model(inputs, outputs, name="deeplabv3plus")
