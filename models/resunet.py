"""U-Net with a residual encoder and MCAD between encoder and decoder (the paper's best model)."""

from __future__ import annotations

from functools import partial
from typing import Any

import keras

from models.blocks import ACTIVATIONS, residual_block
from models.encoder_decoder import build_mcad_unet
from models.hparams import UNET_FAMILY_HPARAMS, HParam, mcad_hparam

__all__ = ["HPARAMS", "build_resunet"]

HPARAMS: dict[str, HParam] = {
    "filters": UNET_FAMILY_HPARAMS["filters"],
    "activation": HParam(
        "activation",
        str,
        "leaky_relu",
        "Activation inside the residual blocks, after the addition, in MCAD and the decoder.",
        choices=ACTIVATIONS,
        paper=ACTIVATIONS,
    ),
    "depth": UNET_FAMILY_HPARAMS["depth"],
    "mcad": mcad_hparam(),
    "batch_norm": UNET_FAMILY_HPARAMS["batch_norm"],
    "output_prior": UNET_FAMILY_HPARAMS["output_prior"],
    "precision": UNET_FAMILY_HPARAMS["precision"],
}


def build_resunet(*, activation: str, **shape_and_sizes: Any) -> keras.Model:
    """Residual blocks in the encoder, MCAD as the bridge, unet's decoder (`batch_norm` applies there).

    `shape_and_sizes`: input_shape, num_classes, filters, depth, mcad, batch_norm and
    output_prior, as `build_mcad_unet` takes them (the registry passes every HPARAMS key)."""
    return build_mcad_unet(
        partial(residual_block, activation=activation),
        name="resunet",
        activation=activation,
        **shape_and_sizes,
    )
