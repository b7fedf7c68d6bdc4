"""The leaderboard report, `results/<experiment>/report.html`, one module per stage of it:

- `values`: a leaderboard cell or a JSON file as the report reads it;
- `curves`: every trial's per-epoch results, from tune/ or from curves.json;
- `hparams`: the finished trials, the hyperparameters that vary, their importance, trial labels;
- `plots`: the figures, as embedded PNGs;
- `tables`: the leaderboard and the test scores;
- `sections`: the search's and the promoted models' sections, a plot or a note each;
- `provenance`: cost, how to rerun the search, the files the page is drawn from;
- `page`: the page put together and written, and the command line;
- `__main__`: `python -m search.report experiment=NAME`, whose --help says what it reads.
"""

from __future__ import annotations

from search.report.curves import CURVES_FILE, Curves, learning_curves, load_curves
from search.report.hparams import (
    Axis,
    infer_axis,
    param_importances,
    search_columns,
    trial_labels,
    varying_axes,
)
from search.report.page import build_report, main, write_report
from search.report.tables import leaderboard_table

__all__ = [
    "CURVES_FILE",
    "Axis",
    "Curves",
    "build_report",
    "infer_axis",
    "leaderboard_table",
    "learning_curves",
    "load_curves",
    "main",
    "param_importances",
    "search_columns",
    "trial_labels",
    "varying_axes",
    "write_report",
]
