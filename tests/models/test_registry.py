"""Registry and hyperparameter validation: bad input fails listing what is valid."""

from __future__ import annotations

import keras
import numpy as np
import pytest

import models
from models import HParamError


def test_unknown_model_lists_the_known_ones() -> None:
    with pytest.raises(HParamError, match="unknown model 'unett'; known models: unet, resunet"):
        models.build_model("unett", input_shape=(32, 32, 1), num_classes=1)
    with pytest.raises(HParamError, match="deeplabv3plus"):
        models.hparam_spec("deeplab")


def test_unknown_hparam_lists_the_valid_ones() -> None:
    with pytest.raises(
        HParamError, match=r"unet: unknown hyperparameter\(s\) 'alpha'; valid: .*filters"
    ):
        models.build_model("unet", input_shape=(32, 32, 1), num_classes=1, alpha=0.5)


@pytest.mark.parametrize(
    "name,hparams,message",
    [
        ("unet", {"filters": 0}, r"'filters' = 0 is out of range; allowed: int in \[1, 256\]"),
        ("unet", {"filters": 8.5}, "'filters' = 8.5 is not a int"),
        ("unet", {"filters": True}, "'filters' = True is not a int"),
        (
            "unet",
            {"activation": "elu"},
            "'activation' = 'elu' is not allowed; allowed: one of 'relu', 'leaky_relu'",
        ),
        (
            "resunet",
            {"mcad": "large"},
            "'mcad' = 'large' is not allowed; allowed: one of 'basic', 'original'",
        ),
        ("invresunet", {"expansion": 0}, "'expansion' = 0 is out of range"),
        (
            "deeplabv3plus",
            {"alpha": 0.0},
            r"'alpha' = 0.0 is out of range; allowed: float in \(0, 1\]",
        ),
        ("deeplabv3plus", {"alpha": 1.5}, "out of range"),
        (
            "deeplabv3plus",
            {"precision": "float16"},
            "one of 'float32', 'mixed_float16', 'mixed_bfloat16'",
        ),
    ],
)
def test_out_of_range_values_fail_naming_model_key_and_range(
    name: str, hparams: dict, message: str
) -> None:
    with pytest.raises(HParamError, match=message):
        models.build_model(name, input_shape=(32, 32, 1), num_classes=1, **hparams)
    with pytest.raises(HParamError, match=name):
        models.resolve_hparams(name, hparams)


@pytest.mark.parametrize("shape", [(32, 32), (0, 32, 1), (32, 32, 0), "32x32", (32.0, 32, 1)])
def test_bad_input_shape_fails(shape) -> None:
    with pytest.raises(HParamError, match="input_shape"):
        models.build_model("unet", input_shape=shape, num_classes=1, filters=2, depth=1)


def test_bad_num_classes_fails() -> None:
    with pytest.raises(HParamError, match="num_classes=0"):
        models.build_model("unet", input_shape=(32, 32, 1), num_classes=0, filters=2, depth=1)


def test_spec_defaults_are_valid_and_complete() -> None:
    for name in models.model_names():
        spec = models.hparam_spec(name)
        assert "precision" in spec
        defaults = models.resolve_hparams(name, {})
        assert defaults == {key: hp.default for key, hp in spec.items()}
        for hp in spec.values():
            assert hp.validate(hp.default) == hp.default
            for value in hp.paper:
                hp.validate(value)
    assert set(models.hparam_spec("unet")) >= {"filters", "activation", "depth"}
    assert set(models.hparam_spec("invresunet")) >= {"filters", "expansion", "depth"}
    assert models.hparam_spec("deeplabv3plus")["alpha"].paper == (0.1, 0.25, 0.5, 0.75)
    assert models.hparam_spec("unet")["filters"].paper == (8, 16, 32, 64)


def test_spec_is_a_copy() -> None:
    models.hparam_spec("unet").pop("filters")
    assert "filters" in models.hparam_spec("unet")


def test_integral_floats_and_ints_are_coerced() -> None:
    assert models.resolve_hparams("unet", {"filters": 8.0})["filters"] == 8
    assert models.resolve_hparams("deeplabv3plus", {"alpha": 1})["alpha"] == 1.0
    resolved = models.resolve_hparams("unet", {"filters": np.int64(16)})
    assert resolved["filters"] == 16 and type(resolved["filters"]) is int
    assert (
        type(models.resolve_hparams("deeplabv3plus", {"alpha": np.float32(0.5)})["alpha"]) is float
    )
    with pytest.raises(HParamError, match="is not a float"):
        models.resolve_hparams("deeplabv3plus", {"alpha": float("nan")})


def test_alpha_one_and_odd_alphas_build() -> None:
    for alpha in (1.0, 0.33):
        model = models.build_model(
            "deeplabv3plus", input_shape=(None, None, 1), num_classes=1, alpha=alpha, aspp_filters=8
        )
        assert model.output_shape == (None, None, None, 1)
        keras.backend.clear_session()
