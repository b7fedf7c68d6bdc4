"""Hyperparameter specs shared by several architectures: one definition, the same values."""

from __future__ import annotations

import pytest

import models
from models.blocks import MCAD_DILATIONS
from models.hparams import UNET_FAMILY_HPARAMS, HParamError, mcad_hparam

UNET_FAMILY = ("unet", "resunet", "invresunet")


@pytest.mark.parametrize("name", UNET_FAMILY)
def test_the_unet_family_takes_every_shared_spec(name: str) -> None:
    spec = models.hparam_spec(name)
    assert set(UNET_FAMILY_HPARAMS) == {
        "filters",
        "depth",
        "batch_norm",
        "output_prior",
        "precision",
    }
    for key, shared in UNET_FAMILY_HPARAMS.items():
        assert shared.name == key
        assert spec[key] == shared


def test_the_shared_specs_cannot_be_changed_in_place() -> None:
    with pytest.raises(TypeError):
        UNET_FAMILY_HPARAMS["filters"] = UNET_FAMILY_HPARAMS["depth"]  # type: ignore[index]


@pytest.mark.parametrize("name", ["resunet", "invresunet"])
def test_the_mcad_unets_take_the_shared_mcad_spec(name: str) -> None:
    assert models.hparam_spec(name)["mcad"] == mcad_hparam()
    assert "mcad" not in models.hparam_spec("unet")


def test_mcad_offers_exactly_the_variants_blocks_can_build() -> None:
    spec = mcad_hparam()
    assert spec.default == "basic"
    assert spec.choices == tuple(MCAD_DILATIONS) == ("basic", "original")
    assert spec.validate("original", model="resunet") == "original"
    with pytest.raises(
        HParamError,
        match=r"^resunet: hyperparameter 'mcad' = 'large' is not allowed; "
        r"allowed: one of 'basic', 'original'$",
    ):
        spec.validate("large", model="resunet")


@pytest.mark.parametrize(
    "key,default,inside,outside,allowed",
    [
        ("filters", 8, 256, 257, r"int in \[1, 256\]"),
        ("filters", 8, 1, 0, r"int in \[1, 256\]"),
        ("depth", 5, 7, 8, r"int in \[1, 7\]"),
        ("depth", 5, 1, 0, r"int in \[1, 7\]"),
    ],
)
def test_unet_widths_and_depths_have_their_ranges(
    key: str, default: int, inside: int, outside: int, allowed: str
) -> None:
    spec = UNET_FAMILY_HPARAMS[key]
    assert spec.default == default
    assert spec.validate(inside) == inside
    with pytest.raises(
        HParamError, match=f"'{key}' = {outside} is out of range; allowed: {allowed}"
    ):
        spec.validate(outside)


def test_batch_norm_is_a_real_bool_off_by_default() -> None:
    spec = UNET_FAMILY_HPARAMS["batch_norm"]
    assert spec.default is False and spec.validate(True) is True
    with pytest.raises(HParamError, match="'batch_norm' = 1 is not a bool"):
        spec.validate(1)


def test_the_paper_searched_filters_8_to_64() -> None:
    assert UNET_FAMILY_HPARAMS["filters"].paper == (8, 16, 32, 64)
