"""95% intervals on Kaggle Dice by a paired bootstrap over images.

A split's score is the mean over its images of each image's mean Dice over the classes. The
bootstrap draws the split's images with replacement `DRAWS` times and takes the 2.5th and
97.5th percentiles of the resampled means. The draws depend only on (`SEED`, the number of
images), so every model scored on the same split is resampled on the same images: the
interval of a difference (a model minus predict-nothing, a model minus the best single
model) is the interval of the per-image differences, paired, not two intervals compared.
"""

from __future__ import annotations

from typing import Any

import numpy as np

__all__ = ["DRAWS", "SEED", "difference", "interval"]

DRAWS = 2000
SEED = 20261203
_BATCH = 250  # draws at a time: 250 x 1,257 images of indices is 2.5 MB


def _resampled_means(values: np.ndarray) -> np.ndarray:
    values = np.asarray(values, dtype=np.float64)
    if values.ndim != 1 or len(values) == 0:
        raise ValueError(f"expected one score per image, got shape {values.shape}")
    rng = np.random.default_rng([SEED, len(values)])
    means = np.empty(DRAWS)
    for lo in range(0, DRAWS, _BATCH):
        index = rng.integers(0, len(values), size=(min(_BATCH, DRAWS - lo), len(values)))
        means[lo : lo + len(index)] = values[index].mean(axis=1)
    return means


def interval(values: np.ndarray) -> list[float]:
    """[low, high]: the 95% percentile-bootstrap interval of the mean of per-image scores."""
    low, high = np.percentile(_resampled_means(values), [2.5, 97.5])
    return [float(low), float(high)]


def difference(values: np.ndarray, reference: np.ndarray) -> dict[str, Any]:
    """mean(values - reference) over the same images, its paired 95% interval, and whether
    the interval leaves out 0 (a difference the images can tell from none)."""
    delta = np.asarray(values, dtype=np.float64) - np.asarray(reference, dtype=np.float64)
    low, high = interval(delta)
    return {"value": float(delta.mean()), "interval95": [low, high], "clear": low > 0 or high < 0}
