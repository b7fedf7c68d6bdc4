"""U-Net (Ronneberger et al.) as the seed paper's code built it: five stages of 8..128 plus a
256-filter bottleneck at filters=8 (1,944,772 parameters for 4 classes)."""

from __future__ import annotations

from functools import partial

import keras

from models.blocks import ACTIVATIONS, conv_block
from models.encoder_decoder import build_encoder_decoder
from models.hparams import HParam, output_prior_hparam, precision_hparam

__all__ = ["HPARAMS", "build_unet"]


def _filters() -> HParam:
    return HParam(
        "filters",
        int,
        8,
        "Width of the first stage, doubled at each stage.",
        low=1,
        high=256,
        paper=(8, 16, 32, 64),
    )


def _depth() -> HParam:
    return HParam(
        "depth",
        int,
        5,
        "Encoder stages before the bottleneck (the paper's code: 5).",
        low=1,
        high=7,
    )


def _activation(default: str) -> HParam:
    return HParam(
        "activation",
        str,
        default,
        "Activation of the conv blocks.",
        choices=ACTIVATIONS,
        paper=ACTIVATIONS,
    )


def _batch_norm() -> HParam:
    return HParam(
        "batch_norm",
        bool,
        False,
        "Batch norm after each conv of the plain conv blocks (the paper's U-Net had none).",
        choices=(False, True),
    )


HPARAMS: dict[str, HParam] = {
    hp.name: hp
    for hp in (
        _filters(),
        _activation("relu"),
        _depth(),
        _batch_norm(),
        output_prior_hparam(),
        precision_hparam(),
    )
}


def build_unet(
    *,
    input_shape: tuple[int | None, int | None, int],
    num_classes: int,
    filters: int,
    activation: str,
    depth: int,
    batch_norm: bool,
    output_prior: float,
) -> keras.Model:
    """Plain U-Net: conv blocks in the encoder and as the bottleneck, transposed-conv decoder."""
    block = partial(conv_block, activation=activation, batch_norm=batch_norm)
    return build_encoder_decoder(
        input_shape=input_shape,
        num_classes=num_classes,
        filters=filters,
        depth=depth,
        encoder_block=block,
        bridge=block,
        decoder_activation=activation,
        decoder_batch_norm=batch_norm,
        output_prior=output_prior,
        name="unet",
    )
