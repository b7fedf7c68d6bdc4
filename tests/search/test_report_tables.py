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
