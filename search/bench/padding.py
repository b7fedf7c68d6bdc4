"""How much a model's score depends on what fills the padding up to its multiple.

    python -m search.bench.padding model=PATH.keras shards=URI [split=val] [limit=0]
        [batch_size=8]

The U-Nets and DeepLabV3+ pad their input up to a multiple of 2**depth (32 for a 5-level
U-Net) inside the model (`models.layers.PadToMultiple`), by mirroring the image. A model
trained on crops whose sides need no padding meets the padding only when it is validated on
whole images (NEU-Seg: 200x200, padded to 224). This command scores the same weights on the
same images three ways, raw (threshold 0.5, no post-processing, no TTA):

- `mirrored`: the model as it is;
- `zeros`: each batch zero-padded to the multiple before the model sees it, so the layer has
  nothing left to add: what the project's models did before the padding mirrored;
- `predict_nothing`: the all-empty prediction on the same images.

It prints one line per way and a JSON line last.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
from omegaconf import MISSING

from data.config import ConfigError, compose_schema, run_cli

__all__ = ["WAYS", "main", "model_multiple", "padded_probabilities", "score_padding"]

WAYS = ("mirrored", "zeros")


@dataclass
class PaddingConfig:
    model: str = MISSING
    shards: str = MISSING
    split: str = "val"
    limit: int = 0  # 0 = the whole split
    batch_size: int = 8


def model_multiple(model: Any) -> int:
    """The multiple the model pads its input to (1 when it pads nothing)."""
    from models.layers import PadToMultiple

    multiples = [layer.multiple for layer in model.layers if isinstance(layer, PadToMultiple)]
    return max(multiples, default=1)


def _zero_padded(batch: np.ndarray, multiple: int) -> np.ndarray:
    height, width = batch.shape[1:3]
    pad_h, pad_w = (-height) % multiple, (-width) % multiple
    return np.pad(batch, [(0, 0), (0, pad_h), (0, pad_w), (0, 0)], mode="constant")


def padded_probabilities(model: Any, batch: np.ndarray, way: str) -> np.ndarray:
    """Probabilities (B, H, W, C) for a uint8 batch (B, H, W, 1), padded the `way` given."""
    import models
    from models.inputs import model_inputs

    if way not in WAYS:
        raise ValueError(f"padding way {way!r}; valid: {', '.join(WAYS)}")
    height, width = batch.shape[1:3]
    inputs = batch if way == "mirrored" else _zero_padded(batch, model_multiple(model))
    logits = np.asarray(model.predict_on_batch(model_inputs(model, inputs)), dtype=np.float32)
    return np.asarray(models.probabilities(logits[:, :height, :width]))


def score_padding(
    model: Any, images: np.ndarray, masks: np.ndarray, *, batch_size: int
) -> dict[str, float]:
    """Raw kaggle_dice of `model` on uint8 `images` (N, H, W) with mirrored and zero padding."""
    from models.metrics import kaggle_dice

    predicted: dict[str, list[np.ndarray]] = {way: [] for way in WAYS}
    for lo in range(0, images.shape[0], batch_size):
        batch = np.asarray(images[lo : lo + batch_size, ..., None])  # model_inputs checks uint8
        for way in WAYS:
            predicted[way].append(padded_probabilities(model, batch, way) > 0.5)
    scores = {way: float(kaggle_dice(masks, np.concatenate(p))) for way, p in predicted.items()}
    scores["predict_nothing"] = float(kaggle_dice(masks, np.zeros_like(masks)))
    return scores


def main(argv: Sequence[str]) -> int:
    from search.inference.loading import load_keras_model
    from search.promote import load_split

    args = asdict(compose_schema(PaddingConfig, argv, __doc__ or ""))
    if args["batch_size"] < 1 or args["limit"] < 0:
        raise ConfigError(
            f"batch_size={args['batch_size']}, limit={args['limit']}: "
            "expected batch_size >= 1 and limit >= 0"
        )
    try:
        model = load_keras_model(Path(args["model"]))
        split = load_split(args["shards"], args["split"], limit=args["limit"] or None)
    except (RuntimeError, ValueError) as exc:  # ModelLoadError, PromotionError, ShardError
        raise ConfigError(str(exc)) from exc
    scores = score_padding(model, split.images, split.masks, batch_size=args["batch_size"])
    size = "x".join(str(s) for s in split.images.shape[1:3])
    print(
        f"{args['model']} on {len(split.image_ids)} {args['split']} images ({size}, padded to a "
        f"multiple of {model_multiple(model)}), raw kaggle_dice:"
    )
    for way, value in scores.items():
        print(f"  {way:16s} {value:.4f}")
    print(
        json.dumps({"images": len(split.image_ids), **{k: round(v, 4) for k, v in scores.items()}})
    )
    return 0


if __name__ == "__main__":
    run_cli(main)
