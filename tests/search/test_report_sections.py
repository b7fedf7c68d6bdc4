"""A section with too little to plot says why, where its plot would be."""

from __future__ import annotations

from pathlib import Path

from report_fixture import section, visible_plots, write_search_outputs

from search.report import build_report


def test_sections_say_why_they_have_no_plot(tmp_path: Path) -> None:
    experiment = tmp_path / "results" / "demo"
    experiment.mkdir(parents=True)
    write_search_outputs(experiment, trials=2, epochs=1)
    board = experiment / "leaderboard.csv"
    lines = board.read_text().splitlines()
    # One finished trial: nothing to compare.
    board.write_text("\n".join([lines[0], lines[1], lines[2].replace("TERMINATED", "ERROR")]))
    page = build_report(experiment)
    assert "need at least two finished trials; this search has 1" in section(page, "parallel")
    assert "Importance needs at least two finished trials" in section(page, "importance")
    assert not visible_plots(section(page, "parallel") + section(page, "importance"))
    # Two finished trials of one point: no hyperparameter varies.
    board.write_text("\n".join([lines[0], lines[1], lines[1].replace("a1b2c_00000", "a1b2c_9")]))
    page = build_report(experiment)
    assert "No hyperparameter varies across the 2 finished trials" in section(page, "parallel")
    assert "none varies across the 2 finished trials" in section(page, "importance")
    assert "No hyperparameter besides the architecture varies" in section(page, "hparams")
