"""Per-epoch results come from tune/ or, without it, from the curves.json kept beside the
leaderboard; a malformed curves.json is named."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pytest
from report_fixture import section, visible_plots, write_search_outputs

from search.report import build_report, write_report
from search.report.curves import (
    CURVES_FILE,
    compact_curves,
    load_curves,
    read_curves_file,
    result_span_s,
    write_curves,
)


def test_curves_are_kept_beside_the_leaderboard_for_a_folder_without_tune(tmp_path: Path) -> None:
    experiment = tmp_path / "results" / "demo"
    experiment.mkdir(parents=True)
    write_search_outputs(experiment, trials=3, epochs=4)
    first = build_report(experiment)  # build_report alone writes nothing
    assert not (experiment / CURVES_FILE).exists()
    write_report(experiment)
    kept = json.loads((experiment / CURVES_FILE).read_text())
    assert sorted(kept["trials"]) == ["a1b2c_00000", "a1b2c_00001", "a1b2c_00002"]
    assert kept["trials"]["a1b2c_00001"]["epoch"] == [1, 2, 3, 4]
    from_tune = load_curves(experiment)
    shutil.rmtree(experiment / "tune")  # as in a committed results folder
    from_file = load_curves(experiment)
    assert from_file.source == CURVES_FILE and from_tune.source == "tune"
    for trial, records in from_tune.trials.items():
        for key in ("epoch", "loss", "val_kaggle_dice"):
            got = [r[key] for r in from_file.trials[trial]]
            assert got == pytest.approx([r[key] for r in records], rel=1e-5)
    page = build_report(experiment)
    curves = section(page, "curves")
    assert "From curves.json (3 trials; tune/ is not in this folder)" in curves
    assert visible_plots(curves).keys() == visible_plots(section(first, "curves")).keys()
    sources = page[page.index('id="sources"') :]
    assert re.search(r"<code>tune/</code></td><td class=\"missing\">missing", sources)
    # Neither tune/ nor curves.json: the section says what is missing and how to keep it.
    (experiment / CURVES_FILE).unlink()
    curves = section(build_report(experiment), "curves")
    assert not visible_plots(curves)
    assert "No per-epoch results: this folder has neither tune/" in curves
    assert "python -m search.report experiment=demo" in curves


def test_broken_curves_file_is_named(tmp_path: Path) -> None:
    experiment = tmp_path / "results" / "demo"
    experiment.mkdir(parents=True)
    write_search_outputs(experiment, trials=2, epochs=2)
    shutil.rmtree(experiment / "tune")
    bad = {"trials": {"a1b2c_00000": {"epoch": [1, 2], "loss": [0.5]}}}
    (experiment / CURVES_FILE).write_text(json.dumps(bad))
    with pytest.raises(ValueError, match=r"curves.json: trial a1b2c_00000: keys of unequal"):
        build_report(experiment)


def test_curves_file_keeps_the_curve_keys_compactly(tmp_path: Path) -> None:
    trials = {
        "t_00000": [
            {"epoch": 1.0, "loss": 0.123456789, "timestamp": 100.12345, "trial_id": "t_00000"},
            {"epoch": 2.0, "loss": float("nan"), "timestamp": 160.0, "dice_patches": 0.5},
        ]
    }
    assert compact_curves(trials)["trials"] == {
        "t_00000": {
            "epoch": [1, 2],
            "loss": [0.123457, None],
            "timestamp": [100.123, 160.0],
            "dice_patches": [None, 0.5],
        }
    }
    path = write_curves(tmp_path, trials)
    assert path == tmp_path / CURVES_FILE
    assert read_curves_file(path)["t_00000"][1] == {
        "epoch": 2,
        "loss": None,
        "timestamp": 160.0,
        "dice_patches": 0.5,
    }


def test_result_span_runs_from_the_first_epochs_start_to_the_last_result() -> None:
    curves = {
        "a": [{"timestamp": 110.0, "time_this_iter_s": 10.0}, {"timestamp": 130.0}],
        "b": [{"timestamp": 125.0, "time_this_iter_s": 30.0}, {"loss": 0.5}],
    }
    assert result_span_s(curves) == pytest.approx(35.0)
    assert result_span_s({"a": [{"loss": 0.5}]}) is None


def _ray_trial(folder: Path, epochs: int) -> list[dict]:
    """A Tune trial folder: result.json and progress.csv of `epochs` epochs, and the newest
    checkpoint's state.json with every epoch's metrics (`history`), as trials write it."""
    folder.mkdir(parents=True)
    lines = [
        {"trial_id": "abcde_00000", "training_iteration": e, "epoch": e, "loss": 1 / e}
        | {"val_loss": 2 / e, "val_kaggle_dice": 0.5 + e / 100}
        for e in range(1, epochs + 1)
    ]
    (folder / "result.json").write_text("".join(json.dumps(r) + "\n" for r in lines))
    header = ",".join(lines[0])
    rows = [",".join(str(v) for v in r.values()) for r in lines]
    (folder / "progress.csv").write_text("\n".join([header, *rows]) + "\n")
    checkpoint = folder / f"checkpoint_{epochs - 1:06d}"
    checkpoint.mkdir()
    state = {"epoch": epochs, "metrics": lines[-1], "history": lines}
    (checkpoint / "state.json").write_text(json.dumps(state))
    return lines


def test_curves_of_a_trial_whose_result_files_a_killed_driver_cut(tmp_path: Path) -> None:
    # Tune copies result.json and progress.csv over the trial folder's in place; a driver
    # killed mid-copy leaves them cut. The curves then come from the checkpoint's history.
    trial = tmp_path / "tune" / "unet_abcde_00000"
    lines = _ray_trial(trial, epochs=4)
    (trial / "result.json").write_text(json.dumps(lines[0]) + "\n")
    (trial / "progress.csv").write_text((trial / "progress.csv").read_text()[:60])
    curves = load_curves(tmp_path)
    assert curves.source == "tune"
    assert curves.trials == {"abcde_00000": lines}


def test_a_result_line_that_does_not_parse_is_named(tmp_path: Path) -> None:
    trial = tmp_path / "tune" / "unet_abcde_00000"
    lines = _ray_trial(trial, epochs=3)
    text = "".join(json.dumps(r) + "\n" for r in lines[:2]) + '{"epoch": 3, "lo\n'
    (trial / "result.json").write_text(text)
    with pytest.raises(ValueError, match=r"unet_abcde_00000/result.json line 3: not JSON"):
        load_curves(tmp_path)
