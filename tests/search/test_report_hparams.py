"""Axes are inferred from the leaderboard's values, PED-ANOVA ranks the hyperparameter that
decides the score, and trials are named by their hyperparameters."""

from __future__ import annotations

import pytest

from search.report.hparams import (
    infer_axis,
    param_importances,
    search_columns,
    trial_labels,
    varying_axes,
)


def _rows(points: list[dict], scores: list[float]) -> list[dict]:
    return [
        {
            "trial_id": f"t_{i:05d}",
            "status": "TERMINATED",
            "model": "unet",
            **point,
            "val_kaggle_dice": score,
        }
        for i, (point, score) in enumerate(zip(points, scores, strict=True))
    ]


def test_importance_ranks_the_hyperparameter_that_decides_the_score() -> None:
    points = [
        {"filters": f, "activation": a, "learning_rate": lr}
        for f in (8, 16, 32, 64)
        for a, lr in (("relu", 1e-3), ("leaky_relu", 3e-4))
    ]
    # The score rises with filters; activation and learning rate change nothing.
    rows = _rows(points, [0.6 + p["filters"] / 1000 for p in points])
    axes = varying_axes(rows, search_columns(rows))
    assert [a.name for a in axes] == ["filters", "activation", "learning_rate"]
    found = param_importances(rows, axes)
    assert found == param_importances(rows, axes)  # deterministic
    assert found["filters"] == pytest.approx(1.0)
    assert found["activation"] == pytest.approx(0.0) and found["learning_rate"] == pytest.approx(
        0.0
    )


def test_axes_are_inferred_from_the_values() -> None:
    from optuna.distributions import (
        CategoricalDistribution,
        FloatDistribution,
        IntDistribution,
    )

    grid = infer_axis("filters", [8, 16, None, 8, 32])
    assert grid.choices == (8, 16, 32) and isinstance(grid.distribution(), CategoricalDistribution)
    assert grid.position(16) == 0.5 and grid.position(None) < 0
    flags = infer_axis("flip", [True, False])
    assert flags.choices == (False, True)
    rates = infer_axis("learning_rate", [1e-4, 2e-4, 5e-4, 1e-3, 2e-3, 3e-3, 1e-2])
    assert rates.distribution() == FloatDistribution(1e-4, 1e-2, log=True)
    assert rates.position(1e-3) == pytest.approx(0.5)
    sizes = infer_axis("batch", [2, 3, 4, 5, 6, 7, 8])
    assert sizes.distribution() == IntDistribution(2, 8, log=False)
    assert infer_axis("loss", ["bce", "bce", None]) is None


def test_trials_are_labelled_by_their_hyperparameters() -> None:
    rows = [
        {
            "trial_id": "x_00000",
            "model": "unet",
            "filters": 8.0,
            "alpha": float("nan"),
            "loss": "bce",
            "val_kaggle_dice": 0.7,
        },
        {
            "trial_id": "x_00001",
            "model": "deeplabv3plus",
            "filters": float("nan"),
            "alpha": 0.25,
            "loss": "bce",
            "val_kaggle_dice": 0.6,
        },
        {
            "trial_id": "x_00002",
            "model": "deeplabv3plus",
            "filters": float("nan"),
            "alpha": 0.25,
            "loss": "bce",
            "val_kaggle_dice": 0.65,
        },
    ]
    assert trial_labels(rows) == {
        "x_00000": "unet filters=8 loss=bce",
        "x_00001": "deeplabv3plus alpha=0.25 loss=bce (x_00001)",
        "x_00002": "deeplabv3plus alpha=0.25 loss=bce (x_00002)",
    }
