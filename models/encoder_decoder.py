"""The U-Net skeleton shared by unet, resunet and invresunet.

Only wiring lives here; the architectures pass the encoder block and the bridge (plain
conv block for unet, MCAD for the others). The decoder is the same for all three:
a 2x2 transposed convolution, concatenation with the skip, then a conv block.
"""

from __future__ import annotations

from collections.abc import Callable

import keras
from keras import layers

from models.blocks import conv_block, mcad_bridge
from models.inputs import image_input
from models.layers import CropToMatch, PadToMultiple
from models.outputs import logits_head

__all__ = ["Block", "build_encoder_decoder"]

# A block maps (tensor, width, name=...) to a tensor.
Block = Callable[..., keras.KerasTensor]


def build_encoder_decoder(
    *,
    input_shape: tuple[int | None, int | None, int],
    num_classes: int,
    filters: int,
    depth: int,
    encoder_block: Block,
    bridge: Block,
    decoder_activation: str,
    decoder_batch_norm: bool,
    output_prior: float,
    name: str,
) -> keras.Model:
    """Encoder of `depth` stages (widths filters * 2**i), a bridge at filters * 2**depth, mirrored decoder."""
    inputs, scaled = image_input(input_shape)
    # Each stage halves H and W, so pad to 2**depth and crop back: outputs align with inputs.
    x = PadToMultiple(2**depth, name="pad")(scaled)
    skips = []
    for stage in range(depth):
        x = encoder_block(x, filters * 2**stage, name=f"enc{stage + 1}")
        skips.append(x)
        x = layers.MaxPooling2D(2, name=f"enc{stage + 1}_pool")(x)
    x = bridge(x, filters * 2**depth, name="bridge")
    for stage in reversed(range(depth)):
        width = filters * 2**stage
        x = layers.Conv2DTranspose(width, 2, strides=2, name=f"dec{stage + 1}_up")(x)
        x = layers.Concatenate(name=f"dec{stage + 1}_concat")([x, skips[stage]])
        x = conv_block(
            x,
            width,
            activation=decoder_activation,
            batch_norm=decoder_batch_norm,
            name=f"dec{stage + 1}",
        )
    x = CropToMatch(name="crop")([x, scaled])
    outputs = logits_head(x, num_classes=num_classes, prior=output_prior)
    return keras.Model(inputs, outputs, name=name)


def build_mcad_unet(
    encoder_block: Callable[..., object],
    *,
    name: str,
    input_shape: tuple[int | None, int | None, int],
    num_classes: int,
    filters: int,
    depth: int,
    mcad: str,
    activation: str,
    batch_norm: bool,
    output_prior: float,
) -> keras.Model:
    """The paper's MCAD U-Nets: `encoder_block` per stage, MCAD (`mcad` variant) as the
    bridge, the U-Net decoder in `activation` (with batch norm when `batch_norm`)."""
    from functools import partial

    return build_encoder_decoder(
        input_shape=input_shape,
        num_classes=num_classes,
        filters=filters,
        depth=depth,
        encoder_block=encoder_block,
        bridge=partial(mcad_bridge, variant=mcad, activation=activation),
        decoder_activation=activation,
        decoder_batch_norm=batch_norm,
        output_prior=output_prior,
        name=name,
    )
