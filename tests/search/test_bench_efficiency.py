"""search.bench.efficiency: trial-epochs and best Dice from leaderboards, the target check."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

from data.config import ConfigError
from search.bench import efficiency as bench_efficiency


def _board(path: Path, rows: list[tuple[str, int, str, float]]) -> Path:
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["trial_id", "status", "epochs", "val_kaggle_dice", "wall_s"])
        for trial_id, epochs, status, dice in rows:
            writer.writerow([trial_id, status, epochs, "" if dice < 0 else dice, 10.0 * epochs])
    return path


def test_summary_counts_every_trials_epochs_and_the_best_dice(tmp_path):
    path = _board(
        tmp_path / "b.csv",
        [("a", 6, "TERMINATED", 0.71), ("b", 1, "TERMINATED", 0.52), ("c", 0, "ERROR", -1)],
    )
    summary = bench_efficiency.summarise(path)
    assert summary["trials"] == 3
    assert summary["trial_epochs"] == 7
    assert summary["best_val_kaggle_dice"] == 0.71
    assert summary["trial_s"] == 70.0
    assert summary["statuses"] == ["ERROR", "TERMINATED"]


def test_target_needs_both_the_dice_and_the_epoch_budget():
    grid = {"trial_epochs": 100, "best_val_kaggle_dice": 0.80}
    verdict = bench_efficiency.compare(
        {
            "fifo-grid": grid,
            "cheap-close": {"trial_epochs": 40, "best_val_kaggle_dice": 0.795},
            "cheap-worse": {"trial_epochs": 30, "best_val_kaggle_dice": 0.78},
            "close-costly": {"trial_epochs": 41, "best_val_kaggle_dice": 0.81},
        }
    )
    assert verdict["cheap-close"] == {
        "dice_gap": 0.005,
        "epoch_fraction": 0.4,
        "meets_target": True,
    }
    assert not verdict["cheap-worse"]["meets_target"]
    assert not verdict["close-costly"]["meets_target"]


def test_missing_leaderboard_and_missing_prefix_are_named(tmp_path):
    with pytest.raises(ConfigError, match="no leaderboard"):
        bench_efficiency.summarise(tmp_path / "none.csv")
    with pytest.raises(ConfigError, match=r"missing prefix=\.\.\. \(required\)"):
        bench_efficiency.main(["space=unet"])
    with pytest.raises(ConfigError, match="sets experiment"):
        bench_efficiency.main(["prefix=x", "experiment=y"])


def test_a_bad_epochs_cell_names_the_file_and_line(tmp_path):
    path = _board(tmp_path / "b.csv", [("a", 6, "TERMINATED", 0.71)])
    path.write_text(path.read_text().replace(",6,", ",six,"))
    with pytest.raises(ConfigError, match=r"b\.csv line 2: epochs='six' is not a whole number"):
        bench_efficiency.summarise(path)
