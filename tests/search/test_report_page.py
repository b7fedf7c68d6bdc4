"""The HTML report renders in headless Chromium with its table sorted, its plots decoded and
every section there; a section whose input is missing says so where it would be."""

from __future__ import annotations

import csv
import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import experiment_fixture
import numpy as np
import pytest
from PIL import Image
from report_fixture import (
    decoded_images,
    one_plot,
    render,
    section,
    visible_plots,
    write_search_outputs,
)

from search import report


def test_report_of_an_unpromoted_search_renders_sorted(tmp_path: Path) -> None:
    experiment = tmp_path / "results" / "demo"
    experiment.mkdir(parents=True)
    rows = write_search_outputs(experiment)
    page = report.write_report(experiment)
    shot = tmp_path / "page.png"
    dom = render(page, tmp_path, screenshot=shot)
    # The sort script ran: the table says so and its first body row is the best trial.
    assert 'data-sorted-by="val_kaggle_dice"' in dom
    table = dom[dom.index('id="leaderboard"') :]
    first_row = table[table.index("<tbody>") :].split("</tr>")[0]
    best = max(rows, key=lambda r: r["val_kaggle_dice"])["trial_id"]
    assert best in first_row, first_row
    assert "Not promoted yet" in dom
    assert "<th" in table and ">input_wait</th>" in table
    note = section(dom, "input-wait")
    assert "Training steps waited for their input batches 20% of" in note  # median of 4
    assert "(most: 50%; column input_wait)" in note
    assert "2 of 4 trials are input-bound" in note
    plots = visible_plots(dom)
    assert len(plots) == 5, list(plots)
    # Parallel coordinates: an axis per varying column (loss is the same everywhere).
    one_plot(plots, "parallel coordinates: model, filters, activation against val_kaggle_dice, 4")
    assert "The same in every trial that has it: loss=bce_dice." in section(dom, "parallel")
    one_plot(plots, "hyperparameter importance: ")
    assert "PedAnovaImportanceEvaluator" in section(dom, "importance")
    # Learning curves name each trial by its hyperparameters, not its id.
    curves = one_plot(plots, "learning curves: ")
    assert curves.width > 800
    alt = next(a for a in plots if a.startswith("learning curves: "))
    assert "unet filters=8 activation=relu loss=bce_dice" in alt
    assert "resunet filters=64 activation=leaky_relu loss=bce_dice" in alt
    assert "a1b2c_00000" not in alt
    one_plot(plots, "validation Dice against filters, activation")
    one_plot(plots, "wall and device seconds of 4 trials")
    # Nothing recorded by this experiment.json is shown as "not recorded", nothing invented.
    facts = section(dom, "reproduce")
    for name in ("command", "seed", "code (git commit)", "package versions"):
        assert re.search(rf"<th>{re.escape(name)}</th><td class=\"missing\">not recorded", facts)
    assert "Resolved config: not recorded in experiment.json." in facts
    assert "not recorded (experiment.json has no elapsed_s)" in section(dom, "cost")
    # Chromium decoded every image, and the screenshot shows a page.
    decoded = decoded_images(page, tmp_path)
    assert [alt for alt, _, _ in decoded] == list(plots)
    assert all(width > 300 and height > 150 for _, width, height in decoded), decoded
    pixels = np.asarray(Image.open(shot).convert("L"))
    assert pixels.std() > 10 and (pixels < 128).mean() > 0.005


@pytest.fixture(scope="module")
def promoted(tmp_path_factory: pytest.TempPathFactory, neu_seg: Path) -> Path:
    return experiment_fixture.promoted_experiment(tmp_path_factory.getbasetemp(), neu_seg)


@pytest.mark.slow
def test_report_of_a_promoted_experiment_renders_every_section(
    promoted: Path, tmp_path: Path
) -> None:
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "search.report",
            f"experiment={promoted.name}",
            f"results_dir={promoted.parent}",
        ],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    page = promoted / "report.html"
    assert f"wrote {page}" in done.stdout
    assert "http://" not in page.read_text() and "https://" not in page.read_text()
    shot = tmp_path / "page.png"
    dom = render(page, tmp_path, screenshot=shot, height=6000)
    metrics = json.loads((promoted / "final" / "metrics.json").read_text())
    # Final scores come first, with the numbers of metrics.json.
    assert dom.index('id="scores"') < dom.index('id="leaderboard"')
    scores = dom[dom.index('id="scores"') : dom.index("</table>", dom.index('id="scores"'))]
    gains = metrics["gains_on_test"]
    for key in ("best_single_raw", "best_single_tuned", "ensemble_raw", "ensemble_tuned"):
        assert f"{gains[key]:.4f}" in scores
    # The predict-nothing score on the same test images, and every score's lift over it.
    assert "predict nothing (the baseline)" in scores and f"{gains['baseline']:.4f}" in scores
    assert f"{gains['best_single_raw'] - gains['baseline']:+.4f}" in scores
    experiment = json.loads((promoted / "experiment.json").read_text())
    note = dom[dom.index('id="baseline"') :].split("</p>")[0]
    assert f"{experiment['baseline']['kaggle_dice']:.4f}" in note and "4 trials" not in note
    # The leaderboard is sorted best first by the page's script; the errored trial is last.
    table = dom[dom.index('id="leaderboard"') :]
    body = table[table.index("<tbody>") : table.index("</tbody>")]
    rows = body.split("</tr>")[:-1]
    assert len(rows) == 5  # four trials and the predict-nothing row, shaded
    assert sum('class="baseline"' in row and "predict-nothing" in row for row in rows) == 1
    board = list(csv.DictReader((promoted / "leaderboard.csv").open()))
    finished = [r for r in board if r["status"] == "TERMINATED"]
    best = max(finished, key=lambda r: float(r["val_kaggle_dice"]))
    assert best["trial_id"] in rows[0] and experiment_fixture.ERRORED_TRIAL in rows[-1]
    assert "loss became NaN at epoch 1" in rows[-1]
    promoted_rows = dom[dom.index('id="promoted"') :].split("</table>")[0]
    for name in [m["name"] for m in metrics["models"]] + ["ensemble"]:
        assert f">{name}<" in promoted_rows
    # Every section is drawn: parallel coordinates, importance, learning curves, Dice against
    # each hyperparameter, per-class bars, overlays and cost.
    plots = visible_plots(dom)
    assert len(plots) == 7, list(plots)
    one_plot(plots, "parallel coordinates: model, activation, loss against val_kaggle_dice, 3")
    assert "The same in every trial that has it: filters=8, depth=2." in dom
    one_plot(plots, "hyperparameter importance: ")
    one_plot(plots, "learning curves: ")
    alt = next(a for a in plots if a.startswith("learning curves: "))
    for _, arch, hparams, loss in experiment_fixture.TRIALS:
        named = " ".join(f"{k}={v}" for k, v in hparams.items())
        assert f"{arch} {named} loss={loss}" in alt, alt
    one_plot(plots, "validation Dice against activation, loss")
    one_plot(plots, "test Dice per class of ")
    overlays = one_plot(plots, "predictions on ")
    assert np.asarray(overlays.convert("HSV"))[..., 1].max() > 100  # tinted masks are drawn
    one_plot(plots, "wall and device seconds of 4 trials")
    assert "Whole search: 4 trials" in dom
    # The errored trial has no curves, and the section says so.
    assert "No per-epoch results for: unet filters=8 activation=relu depth=2 loss=dice (ERROR)" in (
        section(dom, "curves")
    )
    # The seed experiment.json records, and "not recorded" where it records nothing.
    facts = section(dom, "reproduce")
    assert "<th>seed</th><td>0</td>" in facts
    assert '<th>command</th><td class="missing">not recorded in experiment.json' in facts
    decoded = decoded_images(page, tmp_path)
    assert len(decoded) == 7 and all(w > 300 and h > 150 for _, w, h in decoded), decoded
    # The screenshot shows a page, not a blank window.
    pixels = np.asarray(Image.open(shot).convert("L"))
    assert pixels.std() > 10 and (pixels < 128).mean() > 0.005


@pytest.mark.slow
def test_a_committed_folder_says_what_it_lacks(promoted: Path, tmp_path: Path) -> None:
    # A fresh clone has no tune/ (Ray's folders) and no final/overlays.npz (both gitignored).
    copy = experiment_fixture.copy_experiment(promoted, tmp_path / "results" / promoted.name)
    report.write_report(copy)  # keeps curves.json while tune/ is there
    shutil.rmtree(copy / "tune")
    (copy / "final" / "overlays.npz").unlink()
    page = report.write_report(copy)
    dom = render(page, tmp_path)
    overlays = section(dom, "overlays")
    assert "final/overlays.npz is not in this folder" in overlays and not visible_plots(overlays)
    assert f"python -m search.promote experiment={copy.name}" in overlays
    curves = section(dom, "curves")
    assert "From curves.json (3 trials; tune/ is not in this folder)" in curves
    one_plot(visible_plots(curves), "learning curves: ")
    sources = dom[dom.index('id="sources"') :]
    for missing in ("tune/", "final/overlays.npz"):
        assert re.search(rf"<code>{missing}</code></td><td class=\"missing\">missing", sources)
    assert "<code>curves.json</code></td><td>present</td>" in sources


def test_unknown_experiment_and_broken_metrics_are_named(tmp_path: Path) -> None:
    from data.config import ConfigError

    experiment = tmp_path / "results" / "demo"
    experiment.mkdir(parents=True)
    write_search_outputs(experiment, trials=2, epochs=1)
    with pytest.raises(ConfigError, match="experiment=demo2: no experiment .* demo$"):
        report.main(["experiment=demo2", f"results_dir={tmp_path / 'results'}"])
    (experiment / "final").mkdir()
    (experiment / "final" / "metrics.json").write_text('{"models": [')
    with pytest.raises(ConfigError, match=r"final/metrics.json: not valid JSON"):
        report.main(["experiment=demo", f"results_dir={tmp_path / 'results'}"])
