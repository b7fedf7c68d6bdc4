"""The HTML report renders in headless Chromium with its table sorted, its plots decoded and
every section there; a section whose input is missing says so where it would be."""

from __future__ import annotations

import base64
import csv
import html
import io
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

from search import report

CHROMIUM_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--hide-scrollbars",
)


def _chromium() -> str:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        found = shutil.which(name)
        if found:
            return found
    pytest.fail("headless Chromium is needed for the report test: apt-get install chromium")


def render(page: Path, tmp: Path, *, screenshot: Path | None = None, height: int = 4000) -> str:
    """The DOM after scripts ran (and optionally a screenshot), from headless Chromium."""
    profile = tmp / "chromium-profile"
    args = [_chromium(), *CHROMIUM_FLAGS, f"--user-data-dir={profile}"]
    if screenshot is not None:
        subprocess.run(
            [*args, f"--screenshot={screenshot}", f"--window-size=1280,{height}", page.as_uri()],
            check=True,
            capture_output=True,
            timeout=120,
        )
    done = subprocess.run(
        [*args, "--dump-dom", page.as_uri()], check=True, capture_output=True, timeout=120
    )
    return done.stdout.decode("utf-8")


# Appended to a copy of the page: after load, what Chromium decoded of every image.
IMAGE_PROBE = """<script>window.addEventListener("load", () => {
  document.body.dataset.images = JSON.stringify(Array.from(document.images,
    i => [i.alt, i.naturalWidth, i.naturalHeight]));
});</script>"""


def decoded_images(page: Path, tmp: Path) -> list[tuple[str, int, int]]:
    """(alt, width, height) of every image of the page, as Chromium decoded it."""
    probed = tmp / "probed.html"
    probed.write_text(page.read_text().replace("</body>", IMAGE_PROBE + "</body>"))
    dom = render(probed, tmp)
    found = re.search(r'data-images="([^"]*)"', dom)
    assert found, "the page's load event did not run"
    return [tuple(i) for i in json.loads(html.unescape(found.group(1)))]


def write_search_outputs(folder: Path, *, trials: int = 4, epochs: int = 3) -> list[dict]:
    """leaderboard.csv, experiment.json and tune/<trial>/progress.csv as the search writes them."""
    rng = np.random.default_rng(0)
    rows = []
    for t in range(trials):
        trial_id = f"a1b2c_{t:05d}"
        model = ("unet", "resunet")[t % 2]
        trial_dir = folder / "tune" / f"train_{trial_id}_{t}_filters={8 * 2**t}"
        trial_dir.mkdir(parents=True)
        dice = np.sort(rng.uniform(0.3, 0.9, epochs))
        with (trial_dir / "progress.csv").open("w", newline="") as handle:
            writer = csv.writer(handle)
            writer.writerow(
                ["epoch", "loss", "kaggle_dice", "val_loss", "val_kaggle_dice", "trial_id"]
            )
            for e in range(epochs):
                writer.writerow(
                    [e + 1, 1 / (e + 2), dice[e], 1.1 / (e + 2), dice[e] - 0.05, trial_id]
                )
        rows.append(
            {
                "trial_id": trial_id,
                "status": "TERMINATED",
                "model": model,
                "filters": 8 * 2**t,
                "activation": ("relu", "leaky_relu")[t // 2],
                "loss": "bce_dice",
                "val_kaggle_dice": dice[-1] - 0.05,
                "best_epoch": epochs,
                "epochs": epochs,
                "params": 1000 * (t + 1),
                "wall_s": 30.0 + t,
                "device_s": 20.0 + t,
                "checkpoint": "",
                "error": "",
            }
        )
    with (folder / "leaderboard.csv").open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    (folder / "experiment.json").write_text('{"dataset": {"name": "synthetic"}}')
    return rows


def _visible_plots(dom: str) -> dict[str, str]:
    """{alt text: base64 PNG} of every embedded plot, in page order."""
    found = re.findall(r'<img class="plot" alt="([^"]*)" src="data:image/png;base64,([^"]+)"', dom)
    return {html.unescape(alt): encoded for alt, encoded in found}


def _plot(plots: dict[str, str], prefix: str) -> Image.Image:
    """The one plot whose alt text starts with `prefix`, decoded and checked not blank."""
    matches = [alt for alt in plots if alt.startswith(prefix)]
    assert len(matches) == 1, (prefix, list(plots))
    image = Image.open(io.BytesIO(base64.b64decode(plots[matches[0]])))
    assert image.width > 300 and image.height > 150
    assert np.asarray(image.convert("L")).std() > 5  # not a blank picture
    return image


def _section(dom: str, heading_id: str) -> str:
    """The page from the heading with `heading_id` up to the next h2."""
    start = dom.index(f'id="{heading_id}"')
    end = dom.find("<h2", start)
    return dom[start : end if end >= 0 else len(dom)]


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
    plots = _visible_plots(dom)
    assert len(plots) == 5, list(plots)
    # Parallel coordinates: an axis per varying column (loss is the same everywhere).
    _plot(plots, "parallel coordinates: model, filters, activation against val_kaggle_dice, 4")
    assert "The same in every trial that has it: loss=bce_dice." in _section(dom, "parallel")
    _plot(plots, "hyperparameter importance: ")
    assert "PedAnovaImportanceEvaluator" in _section(dom, "importance")
    # Learning curves name each trial by its hyperparameters, not its id.
    curves = _plot(plots, "learning curves: ")
    assert curves.width > 800
    alt = next(a for a in plots if a.startswith("learning curves: "))
    assert "unet filters=8 activation=relu loss=bce_dice" in alt
    assert "resunet filters=64 activation=leaky_relu loss=bce_dice" in alt
    assert "a1b2c_00000" not in alt
    _plot(plots, "validation Dice against filters, activation")
    _plot(plots, "wall and device seconds of 4 trials")
    # Nothing recorded by this experiment.json is shown as "not recorded", nothing invented.
    facts = _section(dom, "reproduce")
    for name in ("command", "seed", "code (git commit)", "package versions"):
        assert re.search(rf"<th>{re.escape(name)}</th><td class=\"missing\">not recorded", facts)
    assert "Resolved config: not recorded in experiment.json." in facts
    assert "not recorded (experiment.json has no elapsed_s)" in _section(dom, "cost")
    # Chromium decoded every image, and the screenshot shows a page.
    decoded = decoded_images(page, tmp_path)
    assert [alt for alt, _, _ in decoded] == list(plots)
    assert all(width > 300 and height > 150 for _, width, height in decoded), decoded
    pixels = np.asarray(Image.open(shot).convert("L"))
    assert pixels.std() > 10 and (pixels < 128).mean() > 0.005


def test_curves_are_kept_beside_the_leaderboard_for_a_folder_without_tune(tmp_path: Path) -> None:
    experiment = tmp_path / "results" / "demo"
    experiment.mkdir(parents=True)
    write_search_outputs(experiment, trials=3, epochs=4)
    first = report.build_report(experiment)  # build_report alone writes nothing
    assert not (experiment / report.CURVES_FILE).exists()
    report.write_report(experiment)
    kept = json.loads((experiment / report.CURVES_FILE).read_text())
    assert sorted(kept["trials"]) == ["a1b2c_00000", "a1b2c_00001", "a1b2c_00002"]
    assert kept["trials"]["a1b2c_00001"]["epoch"] == [1, 2, 3, 4]
    from_tune = report.load_curves(experiment)
    shutil.rmtree(experiment / "tune")  # as in a committed results folder
    from_file = report.load_curves(experiment)
    assert from_file.source == report.CURVES_FILE and from_tune.source == "tune"
    for trial, records in from_tune.trials.items():
        for key in ("epoch", "loss", "val_kaggle_dice"):
            got = [r[key] for r in from_file.trials[trial]]
            assert got == pytest.approx([r[key] for r in records], rel=1e-5)
    page = report.build_report(experiment)
    curves = _section(page, "curves")
    assert "From curves.json (3 trials; tune/ is not in this folder)" in curves
    assert _visible_plots(curves).keys() == _visible_plots(_section(first, "curves")).keys()
    sources = page[page.index('id="sources"') :]
    assert re.search(r"<code>tune/</code></td><td class=\"missing\">missing", sources)
    # Neither tune/ nor curves.json: the section says what is missing and how to keep it.
    (experiment / report.CURVES_FILE).unlink()
    curves = _section(report.build_report(experiment), "curves")
    assert not _visible_plots(curves)
    assert "No per-epoch results: this folder has neither tune/" in curves
    assert "python -m search.report experiment=demo" in curves


def test_broken_curves_file_is_named(tmp_path: Path) -> None:
    experiment = tmp_path / "results" / "demo"
    experiment.mkdir(parents=True)
    write_search_outputs(experiment, trials=2, epochs=2)
    shutil.rmtree(experiment / "tune")
    bad = {"trials": {"a1b2c_00000": {"epoch": [1, 2], "loss": [0.5]}}}
    (experiment / report.CURVES_FILE).write_text(json.dumps(bad))
    with pytest.raises(ValueError, match=r"curves.json: trial a1b2c_00000: keys of unequal"):
        report.build_report(experiment)


def _rows(points: list[dict], scores: list[float]) -> list[dict]:
    return [
        {
            "trial_id": f"t_{i:05d}",
            "status": "TERMINATED",
            "model": "unet",
            **point,
            "val_kaggle_dice": score,
        }
        for i, (point, score) in enumerate(zip(points, scores, strict=True))
    ]


def test_importance_ranks_the_hyperparameter_that_decides_the_score() -> None:
    points = [
        {"filters": f, "activation": a, "learning_rate": lr}
        for f in (8, 16, 32, 64)
        for a, lr in (("relu", 1e-3), ("leaky_relu", 3e-4))
    ]
    # The score rises with filters; activation and learning rate change nothing.
    rows = _rows(points, [0.6 + p["filters"] / 1000 for p in points])
    axes = report.varying_axes(rows, report.search_columns(rows))
    assert [a.name for a in axes] == ["filters", "activation", "learning_rate"]
    found = report.param_importances(rows, axes)
    assert found == report.param_importances(rows, axes)  # deterministic
    assert found["filters"] == pytest.approx(1.0)
    assert found["activation"] == pytest.approx(0.0) and found["learning_rate"] == pytest.approx(
        0.0
    )


def test_axes_are_inferred_from_the_values() -> None:
    from optuna.distributions import (
        CategoricalDistribution,
        FloatDistribution,
        IntDistribution,
    )

    grid = report.infer_axis("filters", [8, 16, None, 8, 32])
    assert grid.choices == (8, 16, 32) and isinstance(grid.distribution(), CategoricalDistribution)
    assert grid.position(16) == 0.5 and grid.position(None) < 0
    flags = report.infer_axis("flip", [True, False])
    assert flags.choices == (False, True)
    rates = report.infer_axis("learning_rate", [1e-4, 2e-4, 5e-4, 1e-3, 2e-3, 3e-3, 1e-2])
    assert rates.distribution() == FloatDistribution(1e-4, 1e-2, log=True)
    assert rates.position(1e-3) == pytest.approx(0.5)
    sizes = report.infer_axis("batch", [2, 3, 4, 5, 6, 7, 8])
    assert sizes.distribution() == IntDistribution(2, 8, log=False)
    assert report.infer_axis("loss", ["bce", "bce", None]) is None


def test_trials_are_labelled_by_their_hyperparameters() -> None:
    rows = [
        {
            "trial_id": "x_00000",
            "model": "unet",
            "filters": 8.0,
            "alpha": float("nan"),
            "loss": "bce",
            "val_kaggle_dice": 0.7,
        },
        {
            "trial_id": "x_00001",
            "model": "deeplabv3plus",
            "filters": float("nan"),
            "alpha": 0.25,
            "loss": "bce",
            "val_kaggle_dice": 0.6,
        },
        {
            "trial_id": "x_00002",
            "model": "deeplabv3plus",
            "filters": float("nan"),
            "alpha": 0.25,
            "loss": "bce",
            "val_kaggle_dice": 0.65,
        },
    ]
    assert report.trial_labels(rows) == {
        "x_00000": "unet filters=8 loss=bce",
        "x_00001": "deeplabv3plus alpha=0.25 loss=bce (x_00001)",
        "x_00002": "deeplabv3plus alpha=0.25 loss=bce (x_00002)",
    }


def test_sections_say_why_they_have_no_plot(tmp_path: Path) -> None:
    experiment = tmp_path / "results" / "demo"
    experiment.mkdir(parents=True)
    write_search_outputs(experiment, trials=2, epochs=1)
    board = experiment / "leaderboard.csv"
    lines = board.read_text().splitlines()
    # One finished trial: nothing to compare.
    board.write_text("\n".join([lines[0], lines[1], lines[2].replace("TERMINATED", "ERROR")]))
    page = report.build_report(experiment)
    assert "need at least two finished trials; this search has 1" in _section(page, "parallel")
    assert "Importance needs at least two finished trials" in _section(page, "importance")
    assert not _visible_plots(_section(page, "parallel") + _section(page, "importance"))
    # Two finished trials of one point: no hyperparameter varies.
    board.write_text("\n".join([lines[0], lines[1], lines[1].replace("a1b2c_00000", "a1b2c_9")]))
    page = report.build_report(experiment)
    assert "No hyperparameter varies across the 2 finished trials" in _section(page, "parallel")
    assert "none varies across the 2 finished trials" in _section(page, "importance")
    assert "No hyperparameter besides the architecture varies" in _section(page, "hparams")


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
    page = report.build_report(experiment)
    parallel = _section(page, "parallel")
    assert "A blank hyperparameter (one the architecture does not have) sits at" in parallel
    _plot(_visible_plots(parallel), "parallel coordinates: model, filters, alpha against")
    assert "Optuna advises at least five trials" in _section(page, "importance")


def test_reproduce_section_shows_what_experiment_json_records(tmp_path: Path) -> None:
    experiment = tmp_path / "results" / "demo"
    experiment.mkdir(parents=True)
    write_search_outputs(experiment, trials=2, epochs=1)
    recorded = {
        "command": "python -m search.run space=unet 'space.models.unet.grid.filters=[8]'",
        "seed": 7,
        "git_commit": "40b4d1b",
        "versions": {"ray": "2.60.0", "keras": "3.11.0"},
        "elapsed_s": 100.0,
        "config": {"seed": 7, "train": {"epochs": 3}},
        "space": "unet",
    }
    (experiment / "experiment.json").write_text(json.dumps(recorded))
    page = report.build_report(experiment)
    facts = _section(page, "reproduce")
    assert html.escape(recorded["command"]) in facts and "<td>7</td>" in facts
    assert "<td>40b4d1b</td>" in facts and "<td>keras 3.11.0, ray 2.60.0</td>" in facts
    assert "<th>space</th><td>&quot;unet&quot;</td>" in facts
    assert html.escape(json.dumps(recorded["config"], indent=1)) in facts
    assert "not recorded" not in facts
    # The search's elapsed time beside the summed trial time (30 + 31 s): 0.61× side by side.
    cost = _section(page, "cost")
    assert "Elapsed wall time of the search: <b>100 s (0.03 h)</b>" in cost and "0.61×" in cost
    recorded["elapsed_s"] = "an hour"
    (experiment / "experiment.json").write_text(json.dumps(recorded))
    with pytest.raises(ValueError, match=r"experiment.json: elapsed_s=\"an hour\": expected sec"):
        report.build_report(experiment)


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
    plots = _visible_plots(dom)
    assert len(plots) == 7, list(plots)
    _plot(plots, "parallel coordinates: model, activation, loss against val_kaggle_dice, 3")
    assert "The same in every trial that has it: filters=8, depth=2." in dom
    _plot(plots, "hyperparameter importance: ")
    _plot(plots, "learning curves: ")
    alt = next(a for a in plots if a.startswith("learning curves: "))
    for _, arch, hparams, loss in experiment_fixture.TRIALS:
        named = " ".join(f"{k}={v}" for k, v in hparams.items())
        assert f"{arch} {named} loss={loss}" in alt, alt
    _plot(plots, "validation Dice against activation, loss")
    _plot(plots, "test Dice per class of ")
    overlays = _plot(plots, "predictions on ")
    assert np.asarray(overlays.convert("HSV"))[..., 1].max() > 100  # tinted masks are drawn
    _plot(plots, "wall and device seconds of 4 trials")
    assert "Whole search: 4 trials" in dom
    # The errored trial has no curves, and the section says so.
    assert "No per-epoch results for: unet filters=8 activation=relu depth=2 loss=dice (ERROR)" in (
        _section(dom, "curves")
    )
    # The seed experiment.json records, and "not recorded" where it records nothing.
    facts = _section(dom, "reproduce")
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
    overlays = _section(dom, "overlays")
    assert "final/overlays.npz is not in this folder" in overlays and not _visible_plots(overlays)
    assert f"python -m search.promote experiment={copy.name}" in overlays
    curves = _section(dom, "curves")
    assert "From curves.json (3 trials; tune/ is not in this folder)" in curves
    _plot(_visible_plots(curves), "learning curves: ")
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


def test_leaderboard_cells_read_as_their_columns() -> None:
    # A mixed-architecture leaderboard: `filters` is blank for deeplab, so the CSV column was
    # read as floats; whole numbers must still read as whole numbers.
    rows = [
        {
            "trial_id": "a_00000",
            "model": "unet",
            "filters": 16.0,
            "alpha": float("nan"),
            "val_kaggle_dice": 0.6,
            "epochs": 5.0,
            "wall_s": 336.8,
            "learning_rate": 0.001,
        },
        {
            "trial_id": "a_00001",
            "model": "deeplabv3plus",
            "filters": float("nan"),
            "alpha": 0.25,
            "val_kaggle_dice": 0.41602,
            "epochs": 3.0,
            "wall_s": 301.0,
            "learning_rate": 0.001,
        },
    ]
    table = report.leaderboard_table(rows, promoted=set())
    cells = re.findall(r"<td[^>]*>([^<]*)</td>", table)
    assert cells[:8] == ["a_00000", "unet", "16", "", "0.6000", "5", "336.8", "0.001"]
    assert cells[8:] == ["a_00001", "deeplabv3plus", "", "0.25", "0.4160", "3", "301", "0.001"]
    assert "16.0000" not in table and 'data-value="16.0"' in table
