"""U-Net (Ronneberger et al.) as the seed paper's code built it: five stages of 8..128 plus a
256-filter bottleneck at filters=8 (1,944,772 parameters for 4 classes)."""

from __future__ import annotations

from functools import partial

import keras

from models.blocks import ACTIVATIONS, conv_block
from models.encoder_decoder import build_encoder_decoder
from models.hparams import UNET_FAMILY_HPARAMS, HParam

__all__ = ["HPARAMS", "build_unet"]

HPARAMS: dict[str, HParam] = {
    "filters": UNET_FAMILY_HPARAMS["filters"],
    "activation": HParam(
        "activation",
        str,
        "relu",
        "Activation of the conv blocks.",
        choices=ACTIVATIONS,
        paper=ACTIVATIONS,
    ),
    "depth": UNET_FAMILY_HPARAMS["depth"],
    "batch_norm": UNET_FAMILY_HPARAMS["batch_norm"],
    "output_prior": UNET_FAMILY_HPARAMS["output_prior"],
    "precision": UNET_FAMILY_HPARAMS["precision"],
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
