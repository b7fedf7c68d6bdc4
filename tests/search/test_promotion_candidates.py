"""search.promotion.candidates: which trials a promotion takes, read from a leaderboard."""

from __future__ import annotations

from pathlib import Path

import experiment_fixture

from search.promotion.candidates import select_candidates


def test_best_of_every_architecture_plus_top_k(tmp_path: Path) -> None:
    rows = experiment_fixture.read_rows(
        tmp_path,
        [
            experiment_fixture.trial_row("u1", "unet", 0.80),
            experiment_fixture.trial_row("u2", "unet", 0.90),
            experiment_fixture.trial_row("u3", "unet", 0.85),
            experiment_fixture.trial_row("r1", "resunet", 0.70),
            experiment_fixture.trial_row("r2", "resunet", 0.60),
            experiment_fixture.trial_row(
                "d1", "deeplabv3plus", 0.99, status="ERROR"
            ),  # errored: never promoted
            experiment_fixture.trial_row(
                "i1", "invresunet", 0.95, ckpt=""
            ),  # no checkpoint: cannot be promoted
            experiment_fixture.trial_row("i2", "invresunet", 0.50),
        ],
    )
    chosen = select_candidates(rows, top_k=2, where=Path("lb.csv"))
    assert [c.trial_id for c in chosen] == ["u2", "u3", "r1", "i2"]
    assert chosen[0].name == "unet_u2"
    assert chosen[0].hparams == {"filters": 8, "loss": "bce"}
    only_best = select_candidates(rows, top_k=0, where=Path("lb.csv"))
    assert [c.trial_id for c in only_best] == ["u2", "r1", "i2"]


def test_integer_hyperparameters_read_back_from_the_csv_stay_integers(tmp_path: Path) -> None:
    # The baseline row leaves filters empty: a column with blanks must not turn into floats.
    rows = [
        experiment_fixture.trial_row("u1", "unet", 0.8),
        {**experiment_fixture.trial_row("b", "predict-nothing", 0.6, "BASELINE"), "filters": ""},
    ]
    read = experiment_fixture.read_rows(tmp_path, rows)
    (chosen,) = select_candidates(read, top_k=1, where=tmp_path / "leaderboard.csv")
    assert chosen.hparams == {"filters": 8, "loss": "bce"}
    assert isinstance(chosen.hparams["filters"], int)


def test_a_trial_that_scored_exactly_zero_is_a_candidate_and_nan_is_not(tmp_path: Path) -> None:
    rows = experiment_fixture.read_rows(
        tmp_path,
        [
            experiment_fixture.trial_row("u1", "unet", 0.0),
            experiment_fixture.trial_row("r1", "resunet", float("nan")),
            experiment_fixture.trial_row("r2", "resunet", 0.3),
        ],
    )
    chosen = select_candidates(rows, top_k=0, where=Path("lb.csv"))
    assert [c.trial_id for c in chosen] == ["r2", "u1"]  # best of each, by score
