"""search.sweep.leaderboard from trial folders laid out the way Tune writes them."""

from __future__ import annotations

import csv
import json
from pathlib import Path

from search.sweep.leaderboard import (
    TrialRecord,
    repair_results,
    resolve_checkpoint,
    trial_results,
    write_leaderboard,
)

CLASSES = ("a", "b")


def _trial(
    root: Path, name: str, scores: list[float], kept: list[int], history: bool = False
) -> Path:
    """result.json with one line per epoch and checkpoint folders for the `kept` epochs (with
    every epoch's metrics so far in their state.json when `history`, as trials now write)."""
    folder = root / name
    folder.mkdir(parents=True)
    lines, so_far = [], []
    for epoch, score in enumerate(scores, start=1):
        metrics = {
            "epoch": epoch,
            "loss": 1.0 / epoch,
            "val_loss": 2.0 / epoch,
            "val_kaggle_dice": score,
            "val_dice_a": score - 0.1,
            "val_dice_b": score + 0.1,
            "epoch_s": 2.0,
            "params": 1234,
            "time_total_s": 3.0 * epoch,
            "node_id": "abcdef0123456789",
        }
        lines.append(json.dumps(metrics))
        so_far.append(metrics)
        if epoch in kept:
            checkpoint = folder / f"checkpoint_{epoch - 1:06d}"
            checkpoint.mkdir()
            state = {"epoch": epoch, "metrics": metrics}
            if history:
                state["history"] = list(so_far)
            (checkpoint / "state.json").write_text(json.dumps(state))
    (folder / "result.json").write_text("\n".join(lines) + "\n")
    return folder


def test_rows_best_first_with_best_epoch_checkpoint_and_cost(tmp_path):
    good = _trial(tmp_path, "unet_1", [0.5, 0.9, 0.7], kept=[2, 3])
    bad = _trial(tmp_path, "unet_2", [0.3, 0.4], kept=[2])
    records = [
        TrialRecord("t2", "TERMINATED", {"model": "unet", "filters": 16, "loss": "bce"}, str(bad)),
        TrialRecord("t1", "TERMINATED", {"model": "unet", "filters": 8, "loss": "bce"}, str(good)),
        TrialRecord("t3", "ERROR", {"model": "unet", "filters": 64, "loss": "bce"}, None, "Boom"),
    ]
    rows = write_leaderboard(tmp_path, records, class_names=CLASSES, title="x")
    assert [r["trial_id"] for r in rows] == ["t1", "t2", "t3"]
    best = rows[0]
    assert list(best)[:6] == ["trial_id", "status", "model", "filters", "loss", "val_kaggle_dice"]
    assert best["val_kaggle_dice"] == 0.9 and best["best_epoch"] == 2 and best["epochs"] == 3
    assert best["val_dice_a"] == 0.9 - 0.1 and best["val_dice_b"] == 0.9 + 0.1
    assert best["device_s"] == 6.0 and best["wall_s"] == 9.0 and best["params"] == 1234
    # Relative to the experiment folder (here tmp_path), so the folder can move.
    assert best["checkpoint"] == "unet_1/checkpoint_000001"
    assert (tmp_path / best["checkpoint"]).is_dir()
    assert rows[2]["status"] == "ERROR" and rows[2]["error"] == "Boom"
    assert rows[2]["checkpoint"] == "" and rows[2]["epochs"] == 0

    with open(tmp_path / "leaderboard.csv") as handle:
        written = list(csv.DictReader(handle))
    assert [r["trial_id"] for r in written] == ["t1", "t2", "t3"]
    markdown = (tmp_path / "leaderboard.md").read_text()
    body = [
        line for line in markdown.splitlines() if line.startswith("| t") and "trial_id" not in line
    ]
    assert [line.split(" | ")[0] for line in body] == ["| t1", "| t2", "| t3"]
    assert "| t3 | ERROR |" in markdown


def test_unflushed_last_result_counts(tmp_path):
    folder = _trial(tmp_path, "unet_1", [0.5], kept=[1])
    last = {"epoch": 2, "val_kaggle_dice": 0.8, "time_total_s": 7.0, "epoch_s": 2.0}
    record = TrialRecord("t1", "TERMINATED", {"model": "unet"}, str(folder), last_result=last)
    (row,) = write_leaderboard(tmp_path, [record], class_names=CLASSES, title="x")
    assert row["epochs"] == 2 and row["val_kaggle_dice"] == 0.8 and row["best_epoch"] == 2


def test_an_emptied_result_json_is_scored_and_rebuilt_from_the_checkpoint_history(tmp_path):
    # A driver killed while Tune copied result.json over the trial's leaves it empty; the
    # leaderboard then knew only Tune's last result (epoch 3's 0.7, not epoch 2's 0.9).
    folder = _trial(tmp_path, "unet_1", [0.5, 0.9, 0.7], kept=[2, 3], history=True)
    whole = (folder / "result.json").read_text()
    last = json.loads(whole.splitlines()[-1])
    (folder / "result.json").write_text("")
    record = TrialRecord("t1", "TERMINATED", {"model": "unet"}, str(folder), last_result=last)
    (row,) = write_leaderboard(tmp_path, [record], class_names=CLASSES, title="x")
    assert (row["val_kaggle_dice"], row["best_epoch"], row["epochs"]) == (0.9, 2, 3)
    assert row["device_s"] == 6.0
    assert repair_results(folder) == [1, 2, 3]
    assert (folder / "result.json").read_text() == whole
    assert repair_results(folder) == []  # whole: left alone


def test_a_result_json_cut_mid_line_and_appended_to_is_mended(tmp_path):
    # Truncated inside epoch 2's line, then a resumed trial appended epoch 3 to what was left.
    folder = _trial(tmp_path, "unet_1", [0.5, 0.9, 0.7], kept=[3], history=True)
    whole = (folder / "result.json").read_text()
    one, two, three = whole.splitlines()
    (folder / "result.json").write_text(f"{one}\n{two[:20]}{three}\n")
    assert [r["epoch"] for r in trial_results(folder)] == [1, 2, 3]
    assert repair_results(folder) == [2, 3]
    assert (folder / "result.json").read_text() == whole


def test_checkpoints_without_a_history_repair_nothing(tmp_path):
    # Checkpoints written before trials recorded their history: result.json stands as it is.
    folder = _trial(tmp_path, "unet_1", [0.5, 0.9], kept=[2])
    (folder / "result.json").write_text("")
    assert repair_results(folder) == [] and (folder / "result.json").read_text() == ""


BASELINE = {"split": "val", "images": 20, "kaggle_dice": 0.6, "per_class": {"a": 0.7, "b": 0.5}}


def test_baseline_row_is_ranked_among_the_trials_with_each_trials_lift(tmp_path):
    good = _trial(tmp_path, "unet_1", [0.5, 0.9], kept=[2])
    flat = _trial(tmp_path, "unet_2", [0.6], kept=[1])  # ties the baseline: learned nothing
    worse = _trial(tmp_path, "unet_3", [0.2], kept=[1])
    records = [
        TrialRecord("t1", "TERMINATED", {"model": "unet", "filters": 8, "loss": "bce"}, str(good)),
        TrialRecord("t2", "TERMINATED", {"model": "unet", "filters": 16, "loss": "bce"}, str(flat)),
        TrialRecord(
            "t3", "TERMINATED", {"model": "unet", "filters": 32, "loss": "bce"}, str(worse)
        ),
        TrialRecord("t4", "ERROR", {"model": "unet", "filters": 64, "loss": "bce"}, None, "Boom"),
    ]
    rows = write_leaderboard(tmp_path, records, class_names=CLASSES, title="x", baseline=BASELINE)
    # The baseline sits above the trial that ties it: every row below it learned nothing.
    assert [r["trial_id"] for r in rows] == ["t1", "baseline", "t2", "t3", "t4"]
    base = rows[1]
    assert (base["status"], base["model"]) == ("BASELINE", "predict-nothing")
    assert (base["val_kaggle_dice"], base["val_dice_a"], base["val_dice_b"]) == (0.6, 0.7, 0.5)
    assert base["checkpoint"] == "" and base["filters"] == ""
    assert [r["lift"] for r in rows] == [0.3, 0.0, 0.0, -0.4, ""]
    assert list(rows[0]).index("lift") == list(rows[0]).index("val_kaggle_dice") + 1

    with open(tmp_path / "leaderboard.csv") as handle:
        written = {r["trial_id"]: r for r in csv.DictReader(handle)}
    assert written["baseline"]["status"] == "BASELINE"
    assert written["t1"]["lift"] == "0.3"
    markdown = (tmp_path / "leaderboard.md").read_text()
    assert "Predict-nothing baseline on the same 20 val images: **0.6000**." in markdown
    assert "Best trial t1: 0.9000 (+0.3000); 1 of 3 scored trials beat it." in markdown
    assert "| baseline | BASELINE | predict-nothing |" in markdown


def test_baseline_row_on_a_search_with_no_trial_yet(tmp_path):
    rows = write_leaderboard(tmp_path, [], class_names=CLASSES, title="x", baseline=BASELINE)
    assert [r["trial_id"] for r in rows] == ["baseline"]
    assert "(no trials yet)" in (tmp_path / "leaderboard.md").read_text()


def test_baseline_is_read_from_experiment_json(tmp_path):
    from search.sweep.leaderboard import read_baseline

    assert read_baseline(tmp_path) is None
    (tmp_path / "experiment.json").write_text(json.dumps({"baseline": BASELINE}))
    assert read_baseline(tmp_path) == BASELINE


def test_console_line_shows_the_lift_over_the_baseline():
    from types import SimpleNamespace

    from search.sweep.console import status_line

    trial = SimpleNamespace(
        status="RUNNING",
        last_result={"val_kaggle_dice": 0.81},
        run_metadata=SimpleNamespace(metric_analysis={}),
        config={"point": {"model": "unet", "filters": 8}},
    )
    line = status_line([trial], total=4, baseline=0.6)
    assert (
        "best val_kaggle_dice 0.8100 (+0.2100 over predict-nothing 0.6000) (unet filters=8)" in line
    )
    assert "| predict-nothing 0.6000" in status_line([], total=4, baseline=0.6)


def _tune_trial(status: str, done: int, epochs: int | None = None):
    from types import SimpleNamespace

    point = {"model": "unet"} | ({"epochs": epochs} if epochs else {})
    return SimpleNamespace(
        status=status,
        last_result={"training_iteration": done} if done else {},
        run_metadata=SimpleNamespace(metric_analysis={}),
        config={"point": point, "settings": {"train": {"epochs": 10}}},
    )


def test_epoch_progress_counts_each_trials_own_budget():
    from search.sweep.console import epoch_progress

    trials = [
        _tune_trial("TERMINATED", 3),  # stopped early by a scheduler: nothing more planned
        _tune_trial("RUNNING", 4),  # train.epochs = 10: 6 to go
        _tune_trial("RUNNING", 1, epochs=5),  # its own budget: 4 to go
        _tune_trial("PENDING", 0),  # 10 to go
        _tune_trial("ERROR", 2),
    ]
    assert epoch_progress(trials) == (3 + 4 + 1 + 2, 6 + 4 + 10)


def test_console_eta_follows_this_sessions_epoch_rate(monkeypatch):
    from search.sweep import console

    progress = console.SearchProgress(
        experiment_dir="/nowhere", class_names=["a"], title="t", total=2, interval_s=0
    )
    clock = iter([100.0, 100.0, 160.0])
    monkeypatch.setattr(console.time, "monotonic", lambda: next(clock))
    progress.setup()
    trials = [_tune_trial("RUNNING", 2), _tune_trial("PENDING", 0)]
    assert progress._timing(trials) == (0.0, None)  # no epoch yet this session: no rate
    trials = [_tune_trial("RUNNING", 5), _tune_trial("PENDING", 0)]  # 3 epochs in 60 s, 15 to go
    assert progress._timing(trials) == (60.0, 300.0)
    line = console.status_line(trials, total=2, elapsed_s=60.0, eta_s=300.0)
    assert "| elapsed 1m00s, ETA 5m00s" in line
    assert console.format_duration(7380) == "2h03m"


def test_a_lift_that_rounds_to_zero_is_never_negative_zero():
    from search.sweep.leaderboard import _lift

    lift = _lift(0.60559999, {"kaggle_dice": 0.6056})
    assert lift == 0.0 and str(lift) == "0.0"
    assert _lift(0.7, {"kaggle_dice": 0.6}) == 0.1


def test_a_moved_experiment_still_finds_its_checkpoints(tmp_path: Path) -> None:
    moved = tmp_path / "copy" / "exp"
    checkpoint = moved / "tune" / "trial_1" / "checkpoint_000002"
    checkpoint.mkdir(parents=True)
    recorded = "/elsewhere/results/exp/tune/trial_1/checkpoint_000002"
    assert resolve_checkpoint(recorded, moved) == checkpoint  # an older, absolute record
    assert resolve_checkpoint("/nowhere/ckpt", moved) == Path("/nowhere/ckpt")
    assert resolve_checkpoint("tune/trial_1/checkpoint_000002", moved) == checkpoint


def test_a_broken_experiment_json_is_said_not_silently_dropped(tmp_path):
    import pytest

    from search.sweep.leaderboard import read_baseline

    (tmp_path / "experiment.json").write_text("{not json")
    with pytest.warns(RuntimeWarning, match=r"experiment.json.*no predict-nothing row"):
        assert read_baseline(tmp_path) is None


def test_an_unreadable_state_json_is_said_and_the_others_still_count(tmp_path):
    import pytest

    folder = _trial(tmp_path / "tune", "t1", [0.5, 0.7], kept=[1, 2], history=True)
    (folder / "checkpoint_000001" / "state.json").write_text("{cut")
    with pytest.warns(RuntimeWarning, match=r"checkpoint_000001/state.json: unreadable"):
        results = trial_results(folder)
    assert [r["epoch"] for r in results] == [1, 2]  # result.json still has both epochs


def test_the_input_wait_share_is_seconds_waited_over_seconds_trained(tmp_path):
    from search.sweep.leaderboard import input_wait_share

    folder = _trial(tmp_path, "unet_1", [0.5, 0.6], kept=[2])
    lines = [json.loads(line) for line in (folder / "result.json").read_text().splitlines()]
    for line, (wait, train) in zip(lines, ((3.0, 4.0), (1.0, 6.0)), strict=True):
        line.update(input_wait_s=wait, train_s=train)
    (folder / "result.json").write_text("\n".join(json.dumps(r) for r in lines) + "\n")
    old = _trial(tmp_path, "unet_2", [0.4], kept=[1])  # from before the measure
    records = [
        TrialRecord("t1", "TERMINATED", {"model": "unet", "loss": "bce"}, str(folder)),
        TrialRecord("t2", "TERMINATED", {"model": "unet", "loss": "bce"}, str(old)),
    ]
    rows = write_leaderboard(tmp_path, records, class_names=CLASSES, title="x")
    assert rows[0]["input_wait"] == 0.4  # (3 + 1) / (4 + 6), not the mean of 0.75 and 0.17
    assert rows[1]["input_wait"] == ""
    assert "input_wait" in (tmp_path / "leaderboard.md").read_text()
    assert input_wait_share([{"input_wait_s": 1.0, "train_s": 0.0}]) == ""


def test_the_console_line_says_when_trials_are_input_bound():
    from types import SimpleNamespace

    from search.sweep.console import status_line

    def trial(share):
        result = {} if share is None else {"input_wait_share": share}
        return SimpleNamespace(
            status="RUNNING",
            last_result=result,
            run_metadata=SimpleNamespace(metric_analysis={}),
            config={"point": {"model": "unet"}},
        )

    line = status_line([trial(0.45), trial(0.05), trial(0.3), trial(None)], total=4)
    assert line.endswith("| input-bound: 2 of 3 trials wait >20% for input (give them more CPUs)")
    assert "input-bound" not in status_line([trial(0.05), trial(None)], total=2)
