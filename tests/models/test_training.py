"""A few optimiser steps on a real NEU-Seg batch lower the loss without NaN."""

from __future__ import annotations

from pathlib import Path

import keras
import numpy as np
import pytest
from PIL import Image

import models
from data.images import read_grey
from models.losses import get_loss
from models.metrics import dice_metrics

NEU_CLASSES = ("inclusion", "patches", "scratches")  # ids 1..3 in ann_dir; 0 is background


def neu_batch(root: Path, count: int) -> tuple[np.ndarray, np.ndarray]:
    """(count, 200, 200, 1) uint8 images and one-hot (count, 200, 200, 3) masks."""
    # Every 800th image: the train split is grouped by class, so this spans several classes.
    paths = sorted((root / "img_dir" / "train").glob("*.jpg"))[::800][:count]
    images = np.stack([read_grey(p) for p in paths])[..., None]
    ids = np.stack(
        [np.asarray(Image.open(root / "ann_dir" / "train" / f"{p.stem}.png")) for p in paths]
    )
    masks = np.stack([ids == class_id for class_id in range(1, 4)], axis=-1).astype(np.float32)
    assert masks.any(), "the batch should hold some defect pixels"
    return images, masks


@pytest.mark.slow
@pytest.mark.parametrize(
    "name,hparams",
    [("unet", {"filters": 4, "depth": 3}), ("deeplabv3plus", {"alpha": 0.1, "aspp_filters": 16})],
)
def test_a_few_steps_lower_the_loss(neu_seg: Path, name: str, hparams: dict) -> None:
    keras.utils.set_random_seed(0)
    images, masks = neu_batch(neu_seg, 4)
    # A head that starts at 0.5 (zero bias): its first steps must cut the loss steeply. The
    # default prior (0.01) starts near the all-background loss, where eight steps on four
    # images move it little; that the prior learns faster is a benchmark, not this test.
    model = models.build_model(
        name, input_shape=(200, 200, 1), num_classes=3, output_prior=0.5, **hparams
    )
    model.compile(
        optimizer=keras.optimizers.Adam(1e-2),
        loss=get_loss("bce_dice"),
        metrics=dice_metrics(NEU_CLASSES),
        # Eager steps: tracing the train graph costs more than eight small steps on CPU.
        run_eagerly=True,
    )
    history = model.fit(images, masks, batch_size=4, epochs=8, verbose=0, shuffle=False)
    losses = history.history["loss"]
    assert np.isfinite(losses).all()
    assert losses[-1] < 0.9 * losses[0]
    assert set(history.history) >= {
        "kaggle_dice",
        "dice_inclusion",
        "dice_patches",
        "dice_scratches",
    }
    assert all(0.0 <= v <= 1.0 for v in history.history["kaggle_dice"])
    assert np.isfinite(model.predict(images, verbose=0)).all()
