"""What the report tests share: the files a search leaves behind, headless Chromium to render
a page, and the page's plots and sections picked out of its HTML."""

from __future__ import annotations

import base64
import csv
import html
import io
import json
import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

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
                "input_wait": (0.05, 0.1, 0.3, 0.5)[t],
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


def visible_plots(dom: str) -> dict[str, str]:
    """{alt text: base64 PNG} of every embedded plot, in page order."""
    found = re.findall(r'<img class="plot" alt="([^"]*)" src="data:image/png;base64,([^"]+)"', dom)
    return {html.unescape(alt): encoded for alt, encoded in found}


def one_plot(plots: dict[str, str], prefix: str) -> Image.Image:
    """The one plot whose alt text starts with `prefix`, decoded and checked not blank."""
    matches = [alt for alt in plots if alt.startswith(prefix)]
    assert len(matches) == 1, (prefix, list(plots))
    image = Image.open(io.BytesIO(base64.b64decode(plots[matches[0]])))
    assert image.width > 300 and image.height > 150
    assert np.asarray(image.convert("L")).std() > 5  # not a blank picture
    return image


def section(dom: str, heading_id: str) -> str:
    """The page from the heading with `heading_id` up to the next h2."""
    start = dom.index(f'id="{heading_id}"')
    end = dom.find("<h2", start)
    return dom[start : end if end >= 0 else len(dom)]
