"""The figures: parallel coordinates draw a hyperparameter an architecture lacks at n/a."""

from __future__ import annotations

from pathlib import Path

from report_fixture import one_plot, section, visible_plots

from search.report import build_report


def test_parallel_coordinates_place_a_blank_hyperparameter_at_na(tmp_path: Path) -> None:
    # Mixed architectures: filters is blank for DeepLab trials and alpha for U-Net trials.
    experiment = tmp_path / "results" / "mixed"
    experiment.mkdir(parents=True)
    rows = [
        ("m_00000", "unet", 8, "", 0.70),
        ("m_00001", "unet", 16, "", 0.74),
        ("m_00002", "deeplabv3plus", "", 0.25, 0.66),
        ("m_00003", "deeplabv3plus", "", 0.5, 0.68),
    ]
    columns = ["trial_id", "status", "model", "filters", "alpha", "val_kaggle_dice", "checkpoint"]
    lines = [",".join(columns)] + [
        f"{t},TERMINATED,{m},{f},{a},{d},ckpt/{t}" for t, m, f, a, d in rows
    ]
    (experiment / "leaderboard.csv").write_text("\n".join(lines) + "\n")
    page = build_report(experiment)
    parallel = section(page, "parallel")
    assert "A blank hyperparameter (one the architecture does not have) sits at" in parallel
    one_plot(visible_plots(parallel), "parallel coordinates: model, filters, alpha against")
    assert "Optuna advises at least five trials" in section(page, "importance")
