"""The whole page: build_report puts the sections together in one self-contained HTML page,
write_report writes it (and curves.json) into the experiment folder, and main is the command
line of `python -m search.report`."""

from __future__ import annotations

import html
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from omegaconf import MISSING

from data.config import ConfigError, compose_schema
from search.records import (
    BASELINE_STATUS,
    EXPERIMENT_FILE,
    atomic_write,
    read_experiment,
    read_leaderboard,
    read_metrics,
    resolve_experiment,
)
from search.report.curves import Curves, load_curves, write_curves
from search.report.hparams import finished_trials, held_fixed, search_columns, varying_axes
from search.report.plots import plot_per_class
from search.report.provenance import cost_section, reproduce_section
from search.report.sections import (
    curves_section,
    hparams_section,
    importance_section,
    overlays_section,
    parallel_section,
)
from search.report.tables import (
    baseline_note,
    input_wait_note,
    leaderboard_table,
    promoted_table,
    scores_section,
)
from search.report.values import _number

SORT_SCRIPT = """
function sortTable(table, col, numeric, descending) {
  const body = table.tBodies[0];
  const rows = Array.from(body.rows);
  const key = r => {
    const text = r.cells[col].dataset.value ?? r.cells[col].textContent;
    if (!numeric) return text;
    const v = parseFloat(text);
    return Number.isNaN(v) ? -Infinity : v;
  };
  rows.sort((a, b) => {
    const x = key(a), y = key(b);
    const order = x < y ? -1 : x > y ? 1 : 0;
    return descending ? -order : order;
  });
  rows.forEach(r => body.appendChild(r));
  table.dataset.sortedBy = table.tHead.rows[0].cells[col].textContent;
  table.dataset.sortedDescending = String(descending);
}
document.querySelectorAll("table.sortable").forEach(table => {
  const heads = Array.from(table.tHead.rows[0].cells);
  heads.forEach((th, col) => {
    th.addEventListener("click", () => {
      const descending = table.dataset.sortedBy === th.textContent
        ? table.dataset.sortedDescending !== "true" : th.dataset.numeric === "1";
      sortTable(table, col, th.dataset.numeric === "1", descending);
    });
  });
  const initial = heads.findIndex(th => th.dataset.initialSort === "1");
  if (initial >= 0) sortTable(table, initial, true, true);
});
"""


STYLE = """
body { font-family: system-ui, sans-serif; margin: 1.5rem auto; max-width: 1200px; color: #222; }
h1 { margin-bottom: 0.2rem; } .sub { color: #666; margin-top: 0; }
table { border-collapse: collapse; font-size: 0.85rem; margin: 0.5rem 0 1rem; }
th, td { border: 1px solid #ccc; padding: 3px 7px; text-align: right; }
th { background: #f0f0f0; cursor: default; } table.sortable th { cursor: pointer; }
td.text, th.text { text-align: left; }
.scores td.big { font-size: 1.3rem; font-weight: 600; }
.wrap { overflow-x: auto; } img.plot { max-width: 100%; border: 1px solid #eee; }
.note { color: #a60; } tr.promoted td { background: #eef7ee; }
tr.baseline td { background: #e8e8e8; font-style: italic; } .scores td.lift { color: #265; }
table.facts td { text-align: left; vertical-align: top; } table.facts th { text-align: left; }
pre { background: #f6f6f6; padding: 0.5rem; font-size: 0.8rem; overflow-x: auto; }
code { background: #f3f3f3; padding: 0 2px; } td.missing { color: #a60; }
pre.command { white-space: pre-wrap; margin: 0; background: none; padding: 0; }
"""


def _dataset_label(experiment: Mapping[str, Any]) -> str:
    """The dataset's name, at the top of experiment.json or inside its resolved config."""
    for holder in (experiment, experiment.get("config") or {}):
        dataset = holder.get("dataset", "") if isinstance(holder, Mapping) else ""
        if isinstance(dataset, Mapping):
            dataset = dataset.get("name", "")
        if dataset:
            return str(dataset)
    return "(not recorded in experiment.json)"


def build_report(experiment_dir: Path, *, curves: Curves | None = None) -> str:
    """The report's HTML for an experiment folder (`curves`: `load_curves(experiment_dir)`)."""
    experiment_dir = Path(experiment_dir)
    board = [row.cells for row in read_leaderboard(experiment_dir)]  # trials and baseline
    rows = [r for r in board if r.get("status") != BASELINE_STATUS]
    experiment = (
        read_experiment(experiment_dir).to_dict()
        if (experiment_dir / EXPERIMENT_FILE).is_file()
        else {}
    )
    promoted = read_metrics(experiment_dir)
    metrics = promoted.to_dict() if promoted is not None else None
    curves = load_curves(experiment_dir) if curves is None else curves
    baseline = _number((experiment.get("baseline") or {}).get("kaggle_dice"))
    finished = finished_trials(rows)
    columns = search_columns(rows)
    axes = varying_axes(finished, columns)
    fixed = held_fixed(finished, columns)
    promoted = {m["trial_id"] for m in metrics["models"]} if metrics else set()
    sections = [
        f"<h1>Experiment {html.escape(experiment_dir.name)}</h1>",
        f'<p class="sub">{len(rows)} trials · dataset {html.escape(_dataset_label(experiment))}'
        f" · report written {datetime.now(UTC).isoformat(timespec='seconds')}</p>",
        "<h2>Final scores</h2>",
        scores_section(metrics),
        "<h2>Leaderboard</h2>",
        baseline_note(rows, experiment),
        "<p>Click a column to sort. Promoted trials are green.</p>",
        leaderboard_table(board, promoted),
        input_wait_note(rows),
        '<h2 id="parallel">Hyperparameters against the score</h2>',
        parallel_section(
            finished, axes, fixed, left_out=len(rows) - len(finished), baseline=baseline
        ),
        '<h2 id="importance">Hyperparameter importance</h2>',
        importance_section(finished, axes),
        '<h2 id="curves">Learning curves</h2>',
        curves_section(experiment_dir, curves, rows, baseline=baseline),
        '<h2 id="hparams">Validation Dice against each hyperparameter</h2>',
        hparams_section(finished, axes),
    ]
    if metrics:
        sections += [
            "<h2>Promoted models and the ensemble</h2>",
            "<p>Test Dice per class with the tuned post-processing (t = threshold, "
            "a = minimum area in pixels, g = image gate).</p>",
            promoted_table(metrics),
            plot_per_class(metrics),
            '<h2 id="overlays">Predictions on test images</h2>',
            overlays_section(experiment_dir, metrics),
        ]
    sections += [
        '<h2 id="cost">Cost</h2>',
        cost_section(experiment_dir, rows, metrics, experiment, curves),
        '<h2 id="reproduce">Reproduce</h2>',
        reproduce_section(experiment_dir, experiment),
    ]
    body = "\n".join(sections)
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        f"<title>{html.escape(experiment_dir.name)}: leaderboard report</title>"
        f"<style>{STYLE}</style></head><body>\n{body}\n<script>{SORT_SCRIPT}</script>"
        "</body></html>\n"
    )


def write_report(experiment_dir: Path) -> Path:
    """report.html, and curves.json from tune/ (where tune/ is there) for a later rebuild."""
    experiment_dir = Path(experiment_dir)
    curves = load_curves(experiment_dir)
    if curves.source == "tune" and curves.trials:
        write_curves(experiment_dir, curves.trials)
    out = experiment_dir / "report.html"
    atomic_write(out, build_report(experiment_dir, curves=curves).encode("utf-8"))
    return out


USAGE = """The leaderboard report: one self-contained static HTML page per experiment.

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


@dataclass
class ReportConfig:
    experiment: str = MISSING
    results_dir: str = "results"
    lock_stale_s: float = 60.0


def main(argv: Sequence[str]) -> int:
    args = compose_schema(ReportConfig, argv, USAGE)
    experiment_dir = resolve_experiment(args.experiment, args.results_dir)
    from search.lock import ExperimentLock

    try:
        with ExperimentLock(
            experiment_dir, command="search.report", stale_after_s=args.lock_stale_s
        ):
            out = write_report(experiment_dir)
    except (ValueError, RuntimeError) as exc:
        if isinstance(exc, ConfigError):
            raise
        raise ConfigError(str(exc)) from exc
    print(f"wrote {out}")
    return 0
