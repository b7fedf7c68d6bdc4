"""Blocks: the residual addition, MCAD's dilation rates and bridge, inverted residuals, make_divisible."""

from __future__ import annotations

import keras
import numpy as np
import pytest

import models
from models.blocks import (
    MCAD_DILATIONS,
    inverted_residual_block,
    make_divisible,
    mcad,
    mcad_bridge,
    residual_block,
)


def test_residual_block_adds_its_input() -> None:
    inputs = keras.Input((8, 8, 4))
    out = residual_block(inputs, 4, activation="leaky_relu", name="res")
    model = keras.Model(inputs, out)
    probe = keras.Model(
        inputs, [model.get_layer("res_bn2").output, model.get_layer("res_add").output]
    )
    x = np.random.default_rng(0).normal(size=(2, 8, 8, 4)).astype(np.float32)
    branch, added = probe.predict(x, verbose=0)
    np.testing.assert_allclose(added, branch + x, rtol=1e-5, atol=1e-5)
    assert not np.allclose(branch, 0)  # the branch is real, so the test can fail
    with pytest.raises(ValueError):
        model.get_layer("res_proj")  # same width: identity shortcut, no projection


def test_residual_block_projects_when_widths_differ() -> None:
    inputs = keras.Input((8, 8, 3))
    out = residual_block(inputs, 6, activation="relu", name="res")
    model = keras.Model(inputs, out)
    assert model.get_layer("res_proj").kernel.shape == (1, 1, 3, 6)
    add_inputs = model.get_layer("res_add").input
    assert {tensor.shape[-1] for tensor in add_inputs} == {6}


def test_inverted_residual_adds_only_when_shapes_match() -> None:
    inputs = keras.Input((8, 8, 8))
    same = inverted_residual_block(inputs, 8, expansion=6, name="same")
    wider = inverted_residual_block(same, 16, expansion=6, name="wider")
    strided = inverted_residual_block(wider, 16, expansion=6, stride=2, name="strided")
    model = keras.Model(inputs, strided)
    names = {layer.name for layer in model.layers}
    assert "same_add" in names and "wider_add" not in names and "strided_add" not in names
    assert model.get_layer("same_expand").filters == 48  # 1x1 expansion by the factor
    assert model.get_layer("same_project").filters == 8
    assert model.get_layer("same_project_bn").output is not None  # linear projection: no activation
    assert model.output_shape == (None, 4, 4, 16)


@pytest.mark.parametrize("variant", ["basic", "original"])
def test_mcad_dilation_rates(variant: str) -> None:
    inputs = keras.Input((16, 16, 8))
    model = keras.Model(inputs, mcad(inputs, 8, variant=variant, name="m"))
    convs = [layer for layer in model.layers if isinstance(layer, keras.layers.Conv2D)]
    rates = tuple(c.dilation_rate[0] for c in convs if c.kernel_size == (3, 3))
    assert rates == MCAD_DILATIONS[variant]
    assert {c.filters for c in convs} == {8}  # constant width
    if variant == "original":
        assert convs[-1].kernel_size == (1, 1) and len(convs) == 8


@pytest.mark.parametrize(
    "variant,convs,params",
    [
        # 3x3 4->16 (576 + 16), then 3x3 16->16 (2,304 + 16) for each later layer.
        ("basic", 6, 592 + 5 * 2320),
        # ... and Yu & Koltun's linear 1x1 16->16 (256 + 16) at the end.
        ("original", 8, 592 + 6 * 2320 + 272),
    ],
)
def test_mcad_bridge_keeps_resolution_at_the_bridge_width(
    variant: str, convs: int, params: int
) -> None:
    inputs = keras.Input((8, 8, 4))
    out = mcad_bridge(inputs, 16, variant=variant, activation="leaky_relu", name="bridge")
    model = keras.Model(inputs, out)
    assert model.output_shape == (None, 8, 8, 16)
    conv_layers = [layer for layer in model.layers if isinstance(layer, keras.layers.Conv2D)]
    # Checkpoints of resunet and invresunet hold these names.
    assert [c.name for c in conv_layers] == [f"bridge_mcad_conv{i}" for i in range(1, convs + 1)]
    assert {c.filters for c in conv_layers} == {16}
    assert isinstance(model.get_layer("bridge_mcad_act1"), keras.layers.LeakyReLU)
    assert model.count_params() == params


def test_mcad_bridge_refuses_an_unknown_variant() -> None:
    with pytest.raises(ValueError, match="MCAD variant 'large' is not one of basic, original"):
        mcad_bridge(keras.Input((8, 8, 4)), 16, variant="large", activation="relu", name="bridge")


def test_paper_mcad_table() -> None:
    assert MCAD_DILATIONS["basic"] == (1, 1, 2, 4, 8, 12)
    assert MCAD_DILATIONS["original"] == (1, 1, 2, 4, 8, 16, 1)


@pytest.mark.parametrize("name", ["resunet", "invresunet"])
def test_mcad_sits_between_encoder_and_decoder(name: str) -> None:
    model = models.build_model(name, input_shape=(32, 32, 1), num_classes=1, filters=2, depth=2)
    rates = [
        layer.dilation_rate[0]
        for layer in model.layers
        if layer.name.startswith("bridge_mcad_conv")
    ]
    assert tuple(rates) == (1, 1, 2, 4, 8, 12)
    # The bridge runs at 1/4 resolution with 2 * 2**2 channels, before the first decoder upsampling.
    assert model.get_layer("bridge_mcad_conv6").output.shape == (None, 8, 8, 8)
    assert model.get_layer("dec2_up").input.shape == (None, 8, 8, 8)


def test_unet_has_no_mcad() -> None:
    model = models.build_model("unet", input_shape=(32, 32, 1), num_classes=1, filters=2, depth=2)
    assert not [layer for layer in model.layers if "mcad" in layer.name]


@pytest.mark.parametrize(
    "value,expected",
    [
        (32 * 0.1, 8),
        (16 * 0.5, 8),
        (24 * 0.75, 24),
        (320 * 0.25, 80),
        (96 * 0.35, 32),
        (160 * 0.1, 16),
    ],
)
def test_make_divisible(value: float, expected: int) -> None:
    result = make_divisible(value, 8)
    assert result == expected
    assert result % 8 == 0 and result >= 0.9 * value


def test_deeplab_output_stride_16_low_level_skip_and_atrous_separable_aspp() -> None:
    model = models.build_model(
        "deeplabv3plus", input_shape=(256, 1600, 1), num_classes=4, alpha=0.5
    )
    assert model.get_layer("aspp_concat").output.shape[1:3] == (16, 100)
    assert model.get_layer("decoder_low_level_relu").output.shape == (None, 64, 400, 48)
    assert model.get_layer("block_2_project").filters == make_divisible(24 * 0.5)
    rates = [model.get_layer(f"aspp_rate{r}_depthwise").dilation_rate for r in (6, 12, 18)]
    assert rates == [(6, 6), (12, 12), (18, 18)]
    # Strides past 16 became dilations in the last stages.
    assert model.get_layer("block_14_depthwise").dilation_rate == (2, 2)
    assert model.get_layer("block_13_depthwise").strides == (1, 1)
    assert model.get_layer("stem_conv").kernel.shape[2] == 1  # one grey input channel


@pytest.mark.parametrize("rate", [1, 2, 4, 8, 12])
@pytest.mark.parametrize("size", [(3, 5), (7, 7), (13, 20)])
def test_dilated_conv_equals_keras_conv2d(rate: int, size: tuple[int, int]) -> None:
    import numpy as np

    from models.layers import DilatedConv2D

    rng = np.random.default_rng(rate)
    x = rng.normal(size=(2, *size, 5)).astype("float32")
    reference = keras.layers.Conv2D(6, 3, padding="same", dilation_rate=rate)
    fast = DilatedConv2D(6, 3, padding="same", dilation_rate=rate)
    reference.build(x.shape)
    fast.build(x.shape)
    fast.set_weights(reference.get_weights())
    np.testing.assert_allclose(np.asarray(fast(x)), np.asarray(reference(x)), rtol=1e-5, atol=1e-5)


def test_dilated_conv_refuses_what_it_does_not_compute() -> None:
    from models.layers import DilatedConv2D

    with pytest.raises(ValueError, match="padding='same', strides 1"):
        DilatedConv2D(4, 3, padding="valid", dilation_rate=2)
    with pytest.raises(ValueError, match="strides"):
        DilatedConv2D(4, 3, padding="same", strides=2)


def test_mcad_uses_the_fast_dilated_conv() -> None:
    from models.layers import DilatedConv2D

    inputs = keras.Input((None, None, 8))
    model = keras.Model(inputs, mcad(inputs, 8, name="m"))
    assert all(isinstance(model.get_layer(f"m_conv{i}"), DilatedConv2D) for i in range(1, 7))
