"""The leaderboard table's cells read as their columns: whole numbers, scores, blanks."""

from __future__ import annotations

import re

from search.report.tables import leaderboard_table


def test_leaderboard_cells_read_as_their_columns() -> None:
    # A mixed-architecture leaderboard: `filters` is blank for deeplab, so the CSV column was
    # read as floats; whole numbers must still read as whole numbers.
    rows = [
        {
            "trial_id": "a_00000",
            "model": "unet",
            "filters": 16.0,
            "alpha": float("nan"),
            "val_kaggle_dice": 0.6,
            "epochs": 5.0,
            "wall_s": 336.8,
            "learning_rate": 0.001,
        },
        {
            "trial_id": "a_00001",
            "model": "deeplabv3plus",
            "filters": float("nan"),
            "alpha": 0.25,
            "val_kaggle_dice": 0.41602,
            "epochs": 3.0,
            "wall_s": 301.0,
            "learning_rate": 0.001,
        },
    ]
    table = leaderboard_table(rows, promoted=set())
    cells = re.findall(r"<td[^>]*>([^<]*)</td>", table)
    assert cells[:8] == ["a_00000", "unet", "16", "", "0.6000", "5", "336.8", "0.001"]
    assert cells[8:] == ["a_00001", "deeplabv3plus", "", "0.25", "0.4160", "3", "301", "0.001"]
    assert "16.0000" not in table and 'data-value="16.0"' in table


def _score(value: float, low: float, high: float, versus: dict | None = None) -> dict:
    score = {
        "kaggle_dice": value,
        "interval95": [low, high],
        "lift_over_nothing": {"value": value - 0.85, "interval95": [low - 0.85, high - 0.85]},
        "per_class": {"1": value},
    }
    return {**score, "vs_best_single": versus} if versus else score


def test_test_scores_show_their_intervals_and_ties_with_the_best() -> None:
    from search.report.tables import promoted_table, scores_section

    post = {"classes": [{"name": "1", "threshold": 0.5, "min_area_fraction": 0.0, "gate": 0.0}]}
    tie = {"value": -0.002, "interval95": [-0.006, 0.001], "clear": False}
    clear = {"value": -0.03, "interval95": [-0.04, -0.02], "clear": True}
    itself = {"value": 0.0, "interval95": [0.0, 0.0], "clear": False}
    models = [
        {
            "name": "a",
            "test": {"raw": _score(0.90, 0.89, 0.91), "tuned": _score(0.95, 0.94, 0.96, itself)},
            "postprocess": post,
        },
        {
            "name": "b",
            "test": {"raw": _score(0.90, 0.89, 0.91), "tuned": _score(0.948, 0.94, 0.96, tie)},
            "postprocess": post,
        },
        {
            "name": "c",
            "test": {"raw": _score(0.90, 0.89, 0.91), "tuned": _score(0.92, 0.91, 0.93, clear)},
            "postprocess": post,
        },
    ]
    ensemble = {
        "members": [{"name": "a", "weight": 1.0}],
        "test": models[0]["test"],
        "postprocess": post,
    }
    gains = {
        "best_single_raw": 0.90,
        "best_single_tuned": 0.95,
        "ensemble_raw": 0.90,
        "ensemble_tuned": 0.95,
        "baseline": 0.85,
        "postprocess_gain": 0.05,
        "ensemble_gain_over_best_single_tuned": 0.0,
        "total_gain_over_best_single_raw": 0.05,
    }
    metrics = {
        "models": models,
        "ensemble": ensemble,
        "best_single": "a",
        "class_names": ["1"],
        "gains_on_test": gains,
        "splits": {"test": 100},
    }
    scores = scores_section(metrics)
    assert "0.9500<br><small>[0.9400, 0.9600]</small>" in scores
    assert "+0.1000<br><small>[+0.0900, +0.1100]</small>" in scores  # the lift's own interval
    rows = promoted_table(metrics).split("<tr>")
    marked = {row.split("</td>")[0].rsplit(">", 1)[-1]: "≈ best" in row for row in rows[2:]}
    assert marked == {"a": False, "b": True, "c": False, "ensemble": False}
