"""search.records: the experiment folder's typed records, their readers and writers."""

from __future__ import annotations

import json
import math
import os
from pathlib import Path

import pytest

from search.records import (
    METRIC,
    Experiment,
    RecordError,
    Status,
    atomic_write,
    hparam_column,
    read_experiment,
    read_leaderboard,
    resolve_experiment,
    write_experiment,
)


def test_experiment_round_trips_and_keeps_keys_it_does_not_know(tmp_path: Path) -> None:
    record = Experiment(experiment="e", shards="/s", class_names=["a", "b"], seed=3)
    record.extra["note"] = "kept"
    write_experiment(tmp_path, record)
    read = read_experiment(tmp_path)
    assert read == record
    assert json.loads((tmp_path / "experiment.json").read_text())["note"] == "kept"
    assert read.shards_uri("here") == "/s"


def test_experiment_of_another_version_is_refused_naming_file_and_commit(tmp_path: Path) -> None:
    (tmp_path / "experiment.json").write_text(json.dumps({"version": 2, "git_commit": "abc"}))
    with pytest.raises(RecordError, match=r"experiment.json: format version 2.*'abc'"):
        read_experiment(tmp_path)


def test_unreadable_or_shardless_experiment_is_named(tmp_path: Path) -> None:
    with pytest.raises(RecordError, match="experiment.json is missing"):
        read_experiment(tmp_path)
    (tmp_path / "experiment.json").write_text("[1, 2]")
    with pytest.raises(RecordError, match="expected a JSON object, found list"):
        read_experiment(tmp_path)
    (tmp_path / "experiment.json").write_text(json.dumps({"seed": 1}))
    with pytest.raises(RecordError, match=r"here: no 'shards' URI \(keys present: .*seed"):
        read_experiment(tmp_path).shards_uri("here")


def test_atomic_write_leaves_the_old_file_when_writing_fails(tmp_path: Path) -> None:
    target = tmp_path / "board.csv"
    atomic_write(target, "old\n")
    with pytest.raises(TypeError):
        atomic_write(target, 12)  # type: ignore[arg-type]
    assert target.read_text() == "old\n"
    assert os.listdir(tmp_path) == ["board.csv"]  # no temporary left behind
    atomic_write(target, b"new\n")
    assert target.read_bytes() == b"new\n"


def test_hyperparameter_columns_are_known_by_name_not_position() -> None:
    assert hparam_column("filters") and hparam_column("loss") and hparam_column("learning_rate")
    assert not hparam_column(METRIC)
    assert not hparam_column("val_dice_scratches") and not hparam_column("checkpoint")


def test_leaderboard_rows_are_typed_with_their_hparams_by_name(tmp_path: Path) -> None:
    (tmp_path / "leaderboard.csv").write_text(
        "trial_id,status,model,activation,filters,loss,val_kaggle_dice,lift,epochs,"
        "learning_rate,checkpoint,error\n"
        "a_00001,TERMINATED,unet,relu,8,bce,0.71,0.11,9,0.001,tune/a/checkpoint_000008,\n"
        "baseline,BASELINE,predict-nothing,,,,0.6,0,,,,\n"
        "a_00002,RUNNING,unet,relu,16,bce,,,2,0.001,,\n"
    )
    trial, baseline, running = read_leaderboard(tmp_path)
    assert trial.hparams == {
        "activation": "relu",
        "filters": 8,
        "loss": "bce",
        "learning_rate": 0.001,
    }
    assert isinstance(trial.hparams["filters"], int) and trial.score == 0.71
    assert trial.completed and trial.cells["epochs"] == 9
    assert baseline.is_baseline and baseline.status == Status.BASELINE
    assert baseline.hparams["filters"] is None and not baseline.completed
    assert running.score is None and not running.completed


def test_bad_leaderboards_are_named_with_their_line(tmp_path: Path) -> None:
    with pytest.raises(RecordError, match="leaderboard.csv is missing"):
        read_leaderboard(tmp_path)
    (tmp_path / "leaderboard.csv").write_text("trial_id,model,checkpoint\n")
    with pytest.raises(RecordError, match="missing column.*status, val_kaggle_dice"):
        read_leaderboard(tmp_path)
    (tmp_path / "leaderboard.csv").write_text(
        "trial_id,status,model,val_kaggle_dice,checkpoint\na,TERMINATED,unet,high,x\n"
    )
    with pytest.raises(RecordError, match=r"line 2: val_kaggle_dice='high' is not a number"):
        read_leaderboard(tmp_path)
    # A short row is refused, not padded with blanks that would read as "not scored yet".
    (tmp_path / "leaderboard.csv").write_text(
        "trial_id,status,model,val_kaggle_dice,checkpoint\na,TERMINATED,unet\n"
    )
    with pytest.raises(RecordError, match=r"line 2: fewer cells than the header's 5 columns"):
        read_leaderboard(tmp_path)


def test_a_nan_score_reads_back_as_nan_not_as_missing(tmp_path: Path) -> None:
    (tmp_path / "leaderboard.csv").write_text(
        "trial_id,status,model,val_kaggle_dice,checkpoint\na,TERMINATED,unet,nan,x\n"
    )
    (row,) = read_leaderboard(tmp_path)
    assert row.score is not None and math.isnan(row.score)


def test_unknown_experiment_lists_those_that_exist(tmp_path: Path) -> None:
    write_experiment(tmp_path / "real", Experiment(experiment="real"))
    assert resolve_experiment("real", tmp_path) == tmp_path / "real"
    with pytest.raises(RecordError, match=r"experiment=gone: no experiment at .*: real$"):
        resolve_experiment("gone", tmp_path)


def test_promotion_metrics_round_trip_numpy_values_and_refuse_another_version(
    tmp_path: Path,
) -> None:
    import numpy as np

    from search.records import PromotionMetrics, read_metrics

    assert read_metrics(tmp_path) is None  # not promoted
    metrics = PromotionMetrics(
        experiment="e",
        models=[{"name": "unet_a", "test": {"raw": {"kaggle_dice": np.float32(0.5)}}}],
        gains_on_test={"baseline": np.float64(0.6)},
    )
    (tmp_path / "final").mkdir()
    (tmp_path / "final" / "metrics.json").write_text(metrics.to_json())
    read = read_metrics(tmp_path)
    assert read is not None and read.models[0]["test"]["raw"]["kaggle_dice"] == 0.5
    assert read.gains_on_test == {"baseline": 0.6}
    (tmp_path / "final" / "metrics.json").write_text(json.dumps({"version": 9}))
    with pytest.raises(RecordError, match=r"final/metrics.json: format version 9"):
        read_metrics(tmp_path)


def test_promotion_metrics_write_non_finite_numbers_as_null_at_any_depth() -> None:
    import numpy as np

    from search.records import PromotionMetrics

    metrics = PromotionMetrics(
        experiment="e",
        models=[{"val": {"raw": {"dice": [float("nan"), np.float64("inf"), np.float32(0.25)]}}}],
        gains_on_test={"ensemble": float("-inf")},
    )

    # Standard JSON: Python's parser accepts NaN unless told to refuse it.
    def refuse(constant: str) -> None:
        raise AssertionError(f"non-standard JSON constant {constant}")

    data = json.loads(metrics.to_json(), parse_constant=refuse)
    assert data["models"][0]["val"]["raw"]["dice"] == [None, None, 0.25]
    assert data["gains_on_test"] == {"ensemble": None}
