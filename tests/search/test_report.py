"""The HTML report renders in headless Chromium with its table sorted and its plots visible."""

from __future__ import annotations

import base64
import csv
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


def _visible_plots(dom: str) -> list[str]:
    return re.findall(r'<img class="plot" alt="plot" src="data:image/png;base64,([^"]+)"', dom)


def test_report_of_an_unpromoted_search_renders_sorted(tmp_path: Path) -> None:
    experiment = tmp_path / "results" / "demo"
    experiment.mkdir(parents=True)
    rows = write_search_outputs(experiment)
    page = report.write_report(experiment)
    dom = render(page, tmp_path)
    # The sort script ran: the table says so and its first body row is the best trial.
    assert 'data-sorted-by="val_kaggle_dice"' in dom
    table = dom[dom.index('id="leaderboard"') :]
    first_row = table[table.index("<tbody>") :].split("</tr>")[0]
    best = max(rows, key=lambda r: r["val_kaggle_dice"])["trial_id"]
    assert best in first_row, first_row
    assert "Not promoted yet" in dom
    plots = _visible_plots(dom)
    assert len(plots) == 3  # learning curves, Dice vs hyperparameters, cost
    for encoded in plots:
        image = Image.open(io.BytesIO(base64.b64decode(encoded)))
        assert image.width > 300 and image.height > 200
        assert np.asarray(image.convert("L")).std() > 5  # not a blank picture


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
    # Learning curves, Dice vs hyperparameters, per-class bars, overlays and cost: all drawn.
    plots = _visible_plots(dom)
    assert len(plots) == 5
    for encoded in plots:
        image = Image.open(io.BytesIO(base64.b64decode(encoded)))
        assert image.width > 300 and image.height > 200
        assert np.asarray(image.convert("L")).std() > 5
    overlays = Image.open(io.BytesIO(base64.b64decode(plots[3])))
    assert np.asarray(overlays.convert("HSV"))[..., 1].max() > 100  # tinted masks are drawn
    assert "Whole search: 4 trials" in dom
    # The screenshot shows a page, not a blank window.
    pixels = np.asarray(Image.open(shot).convert("L"))
    assert pixels.std() > 10 and (pixels < 128).mean() > 0.005


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
