"""Blocks: small functions from a tensor to a tensor, with stable layer names from `name`.

The three U-Nets share one skeleton (models.encoder_decoder) and differ only in the encoder
block and the bridge they pass it.
"""

from __future__ import annotations

from keras import layers

from models.layers import DilatedConv2D

__all__ = [
    "ACTIVATIONS",
    "BN_MOMENTUM",
    "MCAD_DILATIONS",
    "activation_layer",
    "batch_norm_layer",
    "conv_block",
    "inverted_residual_block",
    "make_divisible",
    "mcad",
    "mcad_bridge",
    "residual_block",
    "separable_conv_bn",
]

ACTIVATIONS = ("relu", "leaky_relu")

# Dilation rates of the 3x3 layers of MCAD (multi-scale context aggregation, Yu & Koltun).
# "basic" is the seed paper's custom 6-layer version; "original" is Yu & Koltun's Table 1
# (3x3 layers with dilations 1,1,2,4,8,16,1, then a 1x1 layer), all at constant width.
MCAD_DILATIONS = {"basic": (1, 1, 2, 4, 8, 12), "original": (1, 1, 2, 4, 8, 16, 1)}

# Batch norm's moving statistics keep this much of their old value each step (PyTorch's
# default, 0.1 there, is the same 0.9). Keras' default 0.99 needs ~460 steps for its moving
# statistics to forget their initial 0/1 by 99%: a trial of a few hundred steps was then
# evaluated with statistics that were not yet its model's own (a 64x64 synthetic U-Net with
# batch norm, 260 steps: validation stayed at predict-nothing with 0.99, and rose 0.20 over
# it with 0.9).
BN_MOMENTUM = 0.9


def make_divisible(value: float, divisor: int = 8, min_value: int | None = None) -> int:
    """Round a width to a multiple of `divisor`, never dropping more than 10% (MobileNetV2's rule)."""
    minimum = divisor if min_value is None else min_value
    rounded = max(minimum, int(value + divisor / 2) // divisor * divisor)
    if rounded < 0.9 * value:
        rounded += divisor
    return rounded


def activation_layer(activation: str, *, name: str) -> layers.Layer:
    """A named activation layer for `relu`, `leaky_relu` or `relu6`."""
    if activation == "relu":
        return layers.ReLU(name=name)
    if activation == "relu6":
        return layers.ReLU(max_value=6.0, name=name)
    if activation == "leaky_relu":
        # Keras' default slope (0.3), which is what the paper's Keras code got from LeakyReLU().
        return layers.LeakyReLU(name=name)
    raise ValueError(f"activation {activation!r} is not one of relu, leaky_relu, relu6")


def batch_norm_layer(*, name: str) -> layers.Layer:
    """A BatchNormalization layer with the project's momentum (BN_MOMENTUM)."""
    return layers.BatchNormalization(momentum=BN_MOMENTUM, name=name)


def conv_block(x, filters: int, *, activation: str, batch_norm: bool, name: str):
    """Two 3x3 convolutions, each followed by (optional batch norm and) the activation."""
    for index in (1, 2):
        x = layers.Conv2D(
            filters, 3, padding="same", use_bias=not batch_norm, name=f"{name}_conv{index}"
        )(x)
        if batch_norm:
            x = batch_norm_layer(name=f"{name}_bn{index}")(x)
        x = activation_layer(activation, name=f"{name}_act{index}")(x)
    return x


def residual_block(x, filters: int, *, activation: str, name: str):
    """conv3x3-BN-act-conv3x3-BN, plus the input (1x1-projected if widths differ), then activation."""
    shortcut = x
    if x.shape[-1] != filters:
        shortcut = layers.Conv2D(filters, 1, use_bias=False, name=f"{name}_proj")(x)
        shortcut = batch_norm_layer(name=f"{name}_proj_bn")(shortcut)
    x = layers.Conv2D(filters, 3, padding="same", use_bias=False, name=f"{name}_conv1")(x)
    x = batch_norm_layer(name=f"{name}_bn1")(x)
    x = activation_layer(activation, name=f"{name}_act1")(x)
    x = layers.Conv2D(filters, 3, padding="same", use_bias=False, name=f"{name}_conv2")(x)
    x = batch_norm_layer(name=f"{name}_bn2")(x)
    x = layers.Add(name=f"{name}_add")([x, shortcut])
    return activation_layer(activation, name=f"{name}_out")(x)


def inverted_residual_block(
    x, filters: int, *, expansion: int, stride: int = 1, dilation: int = 1, name: str
):
    """MobileNetV2 block: 1x1 expand, 3x3 depthwise, linear 1x1 project; residual when shapes match."""
    in_channels = x.shape[-1]
    inputs = x
    if expansion != 1:
        x = layers.Conv2D(in_channels * expansion, 1, use_bias=False, name=f"{name}_expand")(x)
        x = batch_norm_layer(name=f"{name}_expand_bn")(x)
        x = activation_layer("relu6", name=f"{name}_expand_relu")(x)
    x = layers.DepthwiseConv2D(
        3,
        strides=stride,
        dilation_rate=dilation,
        padding="same",
        use_bias=False,
        name=f"{name}_depthwise",
    )(x)
    x = batch_norm_layer(name=f"{name}_depthwise_bn")(x)
    x = activation_layer("relu6", name=f"{name}_depthwise_relu")(x)
    x = layers.Conv2D(filters, 1, use_bias=False, name=f"{name}_project")(x)
    x = batch_norm_layer(name=f"{name}_project_bn")(x)
    if stride == 1 and in_channels == filters:
        x = layers.Add(name=f"{name}_add")([inputs, x])
    return x


def mcad(x, filters: int, *, variant: str = "basic", activation: str = "relu", name: str = "mcad"):
    """Multi-scale context aggregation: dilated 3x3 convs at constant width `filters`.

    `original` ends with Yu & Koltun's linear 1x1 layer (their 8th layer).
    """
    if variant not in MCAD_DILATIONS:
        raise ValueError(f"MCAD variant {variant!r} is not one of {', '.join(MCAD_DILATIONS)}")
    for index, rate in enumerate(MCAD_DILATIONS[variant], start=1):
        # DilatedConv2D: Conv2D's weights and output, without TF's slow dilated CPU path.
        x = DilatedConv2D(
            filters, 3, padding="same", dilation_rate=rate, name=f"{name}_conv{index}"
        )(x)
        x = activation_layer(activation, name=f"{name}_act{index}")(x)
    if variant == "original":
        x = layers.Conv2D(filters, 1, name=f"{name}_conv{len(MCAD_DILATIONS[variant]) + 1}")(x)
    return x


def mcad_bridge(x, filters: int, *, variant: str, activation: str, name: str):
    """MCAD as the U-Net bridge (resunet, invresunet): its layers are named `{name}_mcad_*`."""
    return mcad(x, filters, variant=variant, activation=activation, name=f"{name}_mcad")


def separable_conv_bn(x, filters: int, *, dilation: int = 1, name: str):
    """Atrous separable conv (DeepLabV3+): depthwise 3x3 dilated-BN-ReLU, pointwise 1x1-BN-ReLU."""
    x = layers.DepthwiseConv2D(
        3, dilation_rate=dilation, padding="same", use_bias=False, name=f"{name}_depthwise"
    )(x)
    x = batch_norm_layer(name=f"{name}_depthwise_bn")(x)
    x = layers.ReLU(name=f"{name}_depthwise_relu")(x)
    x = layers.Conv2D(filters, 1, use_bias=False, name=f"{name}_pointwise")(x)
    x = batch_norm_layer(name=f"{name}_pointwise_bn")(x)
    return layers.ReLU(name=f"{name}_pointwise_relu")(x)
