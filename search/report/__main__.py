"""The leaderboard report: one self-contained static HTML page per experiment.

    python -m search.report experiment=NAME [results_dir=results]

It reads what the search and the promotion wrote:
- `results/NAME/leaderboard.csv` and `experiment.json` (the search),
- `results/NAME/tune/<trial>/progress.csv` (or `result.json`): per-epoch metrics (Ray Tune);
  where tune/ is absent (it is not committed), `results/NAME/curves.json` instead,
- `results/NAME/final/metrics.json` and `final/overlays.npz` (`search.promote`),
and writes `results/NAME/report.html`, plus `results/NAME/curves.json` (the per-epoch metrics
of every trial, a few kB) whenever tune/ is there, so that a committed folder can redraw its
learning curves. Plots are PNGs from matplotlib's Agg backend embedded as base64; the only
script is a few lines that sort the leaderboard table. Nothing is fetched when the page is
opened, so it can be mailed or committed as is. A section whose input is missing says which
file is missing, where the section would be.
"""

from __future__ import annotations

from data.config import run_cli
from search.report.page import main

if __name__ == "__main__":
    run_cli(main)
