"""searcher=optuna with scheduler=asha: a real (tiny) TPE search with a persistent study."""

from __future__ import annotations

import csv
from pathlib import Path

import optuna
import pytest
from cli_checks import run_python

PROJECT = Path(__file__).resolve().parents[2]


@pytest.mark.slow
def test_optuna_asha_search_records_its_study(tmp_path):
    storage = f"sqlite:///{tmp_path / 'optuna.db'}"
    argv = [
        "space=unet",
        "searcher=optuna",
        "searcher.num_samples=3",
        f"searcher.storage={storage}",
        "scheduler=asha",
        "scheduler.grace_period=1",
        "scheduler.reduction_factor=2",
        "experiment=tpe",
        "space.models.unet.grid.filters=[4]",
        "preset=smoke",
        "promote=false",
        "report=false",
        f"results_dir={tmp_path}",
    ]
    done = run_python("-m", "search.run", *argv, timeout=600)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    with open(tmp_path / "tpe" / "leaderboard.csv") as handle:
        rows = [r for r in csv.DictReader(handle) if r["status"] != "BASELINE"]
    assert len(rows) == 3 and {r["status"] for r in rows} == {"TERMINATED"}
    rates = [float(r["learning_rate"]) for r in rows]
    assert all(0.0001 <= rate <= 0.003 for rate in rates)  # drawn from the space's range
    assert len(set(rates)) == 3
    # ASHA ran each trial for 1 or 2 epochs.
    assert {r["epochs"] for r in rows} <= {"1", "2"}
    study = optuna.load_study(study_name="tpe", storage=storage)
    assert len(study.trials) == 3
