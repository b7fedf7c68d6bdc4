"""search.bench.chaos: trial workers and the driver SIGKILLed mid-search, and nothing lost."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
from cli_checks import run_python

from search.bench.chaos import compare

PROJECT = Path(__file__).resolve().parents[2]
TINY = [
    "space=unet",
    "space.models.unet.grid.filters=[4]",
    "space.models.unet.grid.activation=[relu]",
    "space.models.unet.grid.loss=[bce,bce_dice]",
    "preset=smoke",
    "train.limit_train=24",
    # Epochs take about 0.2 s here: 40 of them keep each trial running long enough for three
    # worker kills (each a random 0-3 s after a new epoch) and two driver kills to land.
    "train.epochs=40",
]


def _fake_run(folder: Path, epochs: dict[str, list[int]], score: float = 0.5) -> None:
    """A finished search's leaderboard and result.json files, as search.run leaves them."""
    rows = []
    for index, trial_epochs in epochs.items():
        trial = folder / "tune" / f"unet_abcde_{index}"
        trial.mkdir(parents=True)
        lines = [
            json.dumps({"epoch": e, "loss": 1.0 / e, "val_loss": 2.0 / e}) for e in trial_epochs
        ]
        (trial / "result.json").write_text("\n".join(lines) + "\n")
        rows.append(
            {
                "trial_id": f"abcde_{index}",
                "status": "TERMINATED",
                "epochs": str(max(trial_epochs)),
                "val_kaggle_dice": str(score),
            }
        )
    with (folder / "leaderboard.csv").open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)


def test_compare_counts_repeated_missing_and_different_epochs(tmp_path: Path) -> None:
    _fake_run(tmp_path / "ref", {"00000": [1, 2, 3], "00001": [1, 2, 3]})
    _fake_run(tmp_path / "same", {"00000": [1, 2, 3], "00001": [1, 2, 3]})
    assert compare(tmp_path / "ref", tmp_path / "same", tolerance=0)["lost"] == 0
    _fake_run(tmp_path / "bad", {"00000": [1, 2, 2, 3], "00001": [1, 3]}, score=0.6)
    result = compare(tmp_path / "ref", tmp_path / "bad", tolerance=0.01)
    assert result["repeated_epochs"] == ["unet_abcde_00000"]
    assert result["missing_epochs"] == ["unet_abcde_00001"]
    assert result["scores_off"] == ["00000", "00001"]  # 0.6 against 0.5
    assert result["lost"] >= 4
    assert result["scores"] == {"00000": [0.5, 0.6], "00001": [0.5, 0.6]}


def test_compare_counts_an_emptied_result_json_as_lost_epochs(tmp_path: Path) -> None:
    _fake_run(tmp_path / "ref", {"00000": [1, 2, 3], "00001": [1, 2, 3]})
    _fake_run(tmp_path / "cut", {"00000": [1, 2, 3], "00001": [1, 2, 3]})
    (tmp_path / "cut" / "tune" / "unet_abcde_00000" / "result.json").write_text("")
    (tmp_path / "cut" / "tune" / "experiment_state-2026-11-28_08-03-13.json").write_text("{}")
    result = compare(tmp_path / "ref", tmp_path / "cut", tolerance=0)
    assert result["missing_epochs"] == ["unet_abcde_00000"] and result["lost"] == 1


@pytest.mark.slow
@pytest.mark.timeout(1800)  # the chaos run's own limit (1,500 s) speaks first, with its log
def test_workers_and_driver_killed_mid_search_lose_nothing(tmp_path: Path) -> None:
    argv = ["kills=3", "driver_kills=2", "chaos_seed=1", "experiment=chaos", *TINY]
    done = run_python("-m", "search.bench.chaos", *argv, f"results_dir={tmp_path}", timeout=1500)
    log = (
        (tmp_path / "chaos-chaos.log").read_text()[-3000:]
        if (tmp_path / "chaos-chaos.log").exists()
        else ""
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-2000:] + log
    summary = json.loads(done.stdout.strip().splitlines()[-1])
    assert (summary["worker_kills"], summary["driver_kills"]) == (3, 2)
    assert summary["trials"] == 2 and summary["lost"] == 0
    # Bitwise: one thread a trial, data a function of (seed, epoch), exact checkpoints.
    assert summary["max_score_diff"] == 0.0 and summary["max_loss_diff"] == 0.0
