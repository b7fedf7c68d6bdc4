"""U-Net with a MobileNetV2 inverted-residual encoder and MCAD between encoder and decoder."""

from __future__ import annotations

from functools import partial
from typing import Any

import keras

from models.blocks import inverted_residual_block
from models.encoder_decoder import build_mcad_unet
from models.hparams import UNET_FAMILY_HPARAMS, HParam, mcad_hparam

__all__ = ["HPARAMS", "build_invresunet"]

HPARAMS: dict[str, HParam] = {
    "filters": UNET_FAMILY_HPARAMS["filters"],
    "expansion": HParam(
        "expansion",
        int,
        6,
        "Expansion factor of the inverted-residual blocks (MobileNetV2: 6).",
        low=1,
        high=16,
    ),
    "depth": UNET_FAMILY_HPARAMS["depth"],
    "mcad": mcad_hparam(),
    "activation": HParam(
        "activation",
        str,
        "relu",
        "Activation of MCAD and the decoder (the blocks use ReLU6, as MobileNetV2).",
        choices=("relu", "leaky_relu"),
    ),
    "batch_norm": UNET_FAMILY_HPARAMS["batch_norm"],
    "output_prior": UNET_FAMILY_HPARAMS["output_prior"],
    "precision": UNET_FAMILY_HPARAMS["precision"],
}


def build_invresunet(*, expansion: int, activation: str, **shape_and_sizes: Any) -> keras.Model:
    """Two inverted-residual blocks per encoder stage, MCAD as the bridge, unet's decoder.

    `shape_and_sizes`: input_shape, num_classes, filters, depth, mcad, batch_norm and
    output_prior, as `build_mcad_unet` takes them (the registry passes every HPARAMS key)."""
    return build_mcad_unet(
        partial(_inverted_stage, expansion=expansion),
        name="invresunet",
        activation=activation,
        **shape_and_sizes,
    )


def _inverted_stage(x, filters: int, *, expansion: int, name: str):
    # The first block changes the width (so it cannot be residual); the second, at constant
    # width, carries the residual connection the paper's encoder is named for.
    x = inverted_residual_block(x, filters, expansion=expansion, name=f"{name}_block1")
    return inverted_residual_block(x, filters, expansion=expansion, name=f"{name}_block2")
