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

import base64
import html
import io
import json
import math
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from data.config import ConfigError, run_cli
from search.leaderboard import BASELINE_STATUS, METRIC
from search.predict import parse_overrides
from search.promote import FINISHED, hparam_columns, load_leaderboard, resolve_experiment

__all__ = [
    "Curves",
    "build_report",
    "learning_curves",
    "load_curves",
    "main",
    "param_importances",
    "trial_labels",
    "write_report",
]

# Per-class overlay colours (RGB), colour-blind friendly (Okabe-Ito).
CLASS_COLOURS = [(230, 159, 0), (86, 180, 233), (0, 158, 115), (204, 121, 167), (213, 94, 0)]

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


# --- inputs --------------------------------------------------------------------------------------


def learning_curves(experiment_dir: Path) -> dict[str, list[dict[str, Any]]]:
    """{trial_id: [per-epoch result, ...]} from every trial folder under tune/."""
    import pandas as pd

    curves: dict[str, list[dict[str, Any]]] = {}
    tune_dir = experiment_dir / "tune"
    if not tune_dir.is_dir():
        return curves
    for trial_dir in sorted(p for p in tune_dir.iterdir() if p.is_dir()):
        progress, results = trial_dir / "progress.csv", trial_dir / "result.json"
        records: list[dict[str, Any]] = []
        if progress.is_file() and progress.stat().st_size > 0:
            try:
                records = pd.read_csv(progress).to_dict(orient="records")
            except (pd.errors.ParserError, pd.errors.EmptyDataError) as exc:
                raise ValueError(f"{progress}: unreadable progress file ({exc})") from exc
        elif results.is_file():
            for line, text in enumerate(results.read_text().splitlines(), start=1):
                if text.strip():
                    try:
                        records.append(json.loads(text))
                    except json.JSONDecodeError as exc:
                        raise ValueError(f"{results} line {line}: not JSON ({exc})") from exc
        if records:
            trial_id = str(records[0].get("trial_id") or trial_dir.name)
            curves[trial_id] = records
    return curves


# Per-epoch keys kept in curves.json: what the learning curves and the elapsed time read.
CURVES_FILE = "curves.json"
CURVE_KEYS = (
    "epoch",
    "training_iteration",
    "loss",
    "kaggle_dice",
    "val_loss",
    METRIC,
    "time_this_iter_s",
    "timestamp",
)
CURVE_PREFIXES = ("dice_", "val_dice_")


@dataclass(frozen=True)
class Curves:
    """Every trial's per-epoch results and where they came from: "tune" (tune/<trial>/),
    CURVES_FILE (a copy without tune/), or "" (neither is in the experiment folder)."""

    trials: dict[str, list[dict[str, Any]]]
    source: str


def _compact(key: str, value: Any) -> float | int | None:
    number = _number(value)
    if number is None:
        return None
    if key in ("epoch", "training_iteration") and number.is_integer():
        return int(number)
    if key == "timestamp":
        return round(number, 3)
    return float(f"{number:.6g}")  # six significant digits: the curves, not the bits


def compact_curves(trials: Mapping[str, Sequence[Mapping[str, Any]]]) -> dict[str, Any]:
    """CURVES_FILE's content: {"trials": {trial_id: {key: [one value per epoch]}}}."""
    compact: dict[str, dict[str, list[Any]]] = {}
    for trial_id, records in trials.items():
        keys = [
            k
            for k in dict.fromkeys(k for r in records for k in r)
            if k in CURVE_KEYS or k.startswith(CURVE_PREFIXES)
        ]
        compact[trial_id] = {k: [_compact(k, r.get(k)) for r in records] for k in keys}
    return {"written_by": "search.report, from tune/<trial>/ per-epoch results", "trials": compact}


def write_curves(experiment_dir: Path, trials: Mapping[str, Sequence[Mapping[str, Any]]]) -> Path:
    out = Path(experiment_dir) / CURVES_FILE
    tmp = out.with_name(f".{CURVES_FILE}.tmp")
    tmp.write_text(json.dumps(compact_curves(trials), separators=(",", ":")) + "\n")
    tmp.replace(out)
    return out


def read_curves_file(path: Path) -> dict[str, list[dict[str, Any]]]:
    """CURVES_FILE back into {trial_id: [per-epoch result, ...]}; a malformed file is named."""
    content = _read_json(path)
    trials = content.get("trials") if isinstance(content, dict) else None
    if not isinstance(trials, dict):
        raise ValueError(f'{path}: expected {{"trials": {{trial_id: {{key: [values]}}}}}}')
    curves: dict[str, list[dict[str, Any]]] = {}
    for trial_id, columns in trials.items():
        if not isinstance(columns, dict) or not all(isinstance(v, list) for v in columns.values()):
            raise ValueError(f"{path}: trial {trial_id}: expected {{key: [one value per epoch]}}")
        lengths = {key: len(values) for key, values in columns.items()}
        if len(set(lengths.values())) > 1:
            raise ValueError(f"{path}: trial {trial_id}: keys of unequal length {lengths}")
        epochs = next(iter(lengths.values()), 0)
        curves[str(trial_id)] = [{k: v[e] for k, v in columns.items()} for e in range(epochs)]
    return curves


def load_curves(experiment_dir: Path) -> Curves:
    """tune/'s per-epoch results where tune/ is there, else CURVES_FILE's copy of them."""
    experiment_dir = Path(experiment_dir)
    if (experiment_dir / "tune").is_dir():
        return Curves(learning_curves(experiment_dir), "tune")
    if (experiment_dir / CURVES_FILE).is_file():
        return Curves(read_curves_file(experiment_dir / CURVES_FILE), CURVES_FILE)
    return Curves({}, "")


def _read_json(path: Path) -> dict[str, Any] | None:
    if not path.is_file():
        return None
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise ValueError(f"{path}: not valid JSON ({exc})") from exc


# --- plots ---------------------------------------------------------------------------------------


def _figure(width: float, height: float):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt.figure(figsize=(width, height), dpi=100)


def _png(fig, alt: str) -> str:
    """The figure as an embedded PNG; `alt` says what it shows, for readers and for tests."""
    import matplotlib.pyplot as plt

    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", bbox_inches="tight", metadata={"Software": None})
    plt.close(fig)
    encoded = base64.b64encode(buffer.getvalue()).decode("ascii")
    return f'<img class="plot" alt="{html.escape(alt)}" src="data:image/png;base64,{encoded}">'


def _number(value: Any) -> float | None:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


# --- hyperparameters -----------------------------------------------------------------------------


def finished_trials(rows: Sequence[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    """Trials that ran to their end (or were stopped by the scheduler) with a finite score."""
    return [
        r
        for r in rows
        if str(r.get("status", "")).upper() == FINISHED and _number(r.get(METRIC)) is not None
    ]


def _hparam_value(value: Any) -> bool | int | float | str | None:
    """A leaderboard cell as a plain hyperparameter value; blank (NaN, "") is None."""
    if value is None or isinstance(value, bool | np.bool_):
        return None if value is None else bool(value)
    if isinstance(value, str):
        return value if value.strip() else None
    number = _number(value)
    if number is None:
        return None if isinstance(value, float | np.floating) else str(value)
    return int(number) if number.is_integer() else number


def _shown(value: Any) -> str:
    return f"{value:.3g}" if isinstance(value, float) else str(value)


def search_columns(rows: Sequence[Mapping[str, Any]]) -> list[str]:
    """The architecture and every hyperparameter column of the leaderboard."""
    return ["model", *hparam_columns(rows)] if rows and "model" in rows[0] else []


@dataclass(frozen=True)
class Axis:
    """How one hyperparameter's values lie: evenly spaced `choices`, or a numeric range."""

    name: str
    choices: tuple[Any, ...] | None
    low: float = 0.0
    high: float = 1.0
    log: bool = False
    integer: bool = False

    def distribution(self):
        from optuna.distributions import (
            CategoricalDistribution,
            FloatDistribution,
            IntDistribution,
        )

        if self.choices is not None:
            return CategoricalDistribution(self.choices)
        if self.integer:
            return IntDistribution(int(self.low), int(self.high), log=self.log)
        return FloatDistribution(self.low, self.high, log=self.log)

    def position(self, value: Any) -> float:
        """0..1 along the axis; a blank (the hyperparameter does not apply) sits below, at -0.12."""
        if value is None:
            return -0.12
        if self.choices is not None:
            return self.choices.index(value) / max(1, len(self.choices) - 1)
        scale = math.log10 if self.log else float
        return (scale(value) - scale(self.low)) / (scale(self.high) - scale(self.low))


# Numbers with at most this many distinct values are a grid: evenly spaced choices.
GRID_VALUES = 6


def infer_axis(name: str, values: Sequence[Any]) -> Axis | None:
    """The axis of a column's present values, or None when fewer than two distinct values."""
    present = sorted(
        {v for v in values if v is not None},
        key=lambda v: (1, 0.0, str(v)) if isinstance(v, str | bool) else (0, float(v), ""),
    )
    if len(present) < 2:
        return None
    if any(isinstance(v, str | bool) for v in present) or len(present) <= GRID_VALUES:
        return Axis(name, tuple(present))
    low, high = float(present[0]), float(present[-1])
    integer = all(isinstance(v, int) for v in present)
    return Axis(name, None, low, high, log=low > 0 and high / low >= 20, integer=integer)


def varying_axes(rows: Sequence[Mapping[str, Any]], columns: Sequence[str]) -> list[Axis]:
    """An axis for every column whose present values differ between the rows."""
    axes = [infer_axis(c, [_hparam_value(r.get(c)) for r in rows]) for c in columns]
    return [a for a in axes if a is not None]


def held_fixed(rows: Sequence[Mapping[str, Any]], columns: Sequence[str]) -> list[str]:
    """Every column with one value in all the rows that have it, as "name=value"."""
    fixed = []
    for column in columns:
        present = {_hparam_value(r.get(column)) for r in rows} - {None}
        if len(present) == 1:
            fixed.append(f"{column}={_shown(next(iter(present)))}")
    return fixed


def ped_anova_quantile(trials: int) -> float:
    """The share of best trials PED-ANOVA compares with all of them: 10%, raised so the top
    group holds five trials where there are enough (Optuna's advice), at most half."""
    return min(0.5, max(0.1, 5 / max(1, trials)))


def param_importances(rows: Sequence[Mapping[str, Any]], axes: Sequence[Axis]) -> dict[str, float]:
    """Optuna's PED-ANOVA importance of each axis for val_kaggle_dice, over `rows` (finished
    trials), from an in-memory study of them. A hyperparameter blank in a trial (filters of a
    DeepLab trial) is left out of that trial, as Optuna does for conditional parameters."""
    import optuna
    from optuna.importance import PedAnovaImportanceEvaluator, get_param_importances

    verbosity = optuna.logging.get_verbosity()
    optuna.logging.set_verbosity(optuna.logging.WARNING)  # not a line per in-memory study
    try:
        study = optuna.create_study(direction="maximize", study_name="report")
    finally:
        optuna.logging.set_verbosity(verbosity)
    distributions = {a.name: a.distribution() for a in axes}
    for row in rows:
        params = {a.name: _hparam_value(row.get(a.name)) for a in axes}
        params = {k: v for k, v in params.items() if v is not None}
        trial = optuna.trial.create_trial(
            params=params,
            distributions={k: distributions[k] for k in params},
            value=float(row[METRIC]),
        )
        study.add_trial(trial)
    evaluator = PedAnovaImportanceEvaluator(target_quantile=ped_anova_quantile(len(rows)))
    with warnings.catch_warnings():
        # PED-ANOVA's notes on small studies (the page says it) and its experimental flag.
        warnings.simplefilter("ignore", UserWarning)
        found = get_param_importances(study, evaluator=evaluator, normalize=True)
    return {a.name: float(found.get(a.name, 0.0)) for a in axes}


def trial_labels(rows: Sequence[Mapping[str, Any]]) -> dict[str, str]:
    """{trial_id: "unet filters=8 activation=relu loss=bce_dice"}; a label two trials share
    (an Optuna search may repeat a point) ends with the trial id."""
    columns = hparam_columns(rows)
    labels = {}
    for row in rows:
        values = [(c, _hparam_value(row.get(c))) for c in columns]
        parts = [str(row.get("model", "?"))] + [
            f"{c}={_shown(v)}" for c, v in values if v is not None
        ]
        labels[str(row["trial_id"])] = " ".join(parts)
    counts: dict[str, int] = {}
    for label in labels.values():
        counts[label] = counts.get(label, 0) + 1
    return {t: f"{label} ({t})" if counts[label] > 1 else label for t, label in labels.items()}


# --- plots of the search -------------------------------------------------------------------------

# Per architecture, only this many trials (the best) get a colour and a legend entry.
CURVE_LEGEND_TRIALS = 10


def plot_learning_curves(
    curves: Mapping[str, Sequence[Mapping[str, Any]]],
    rows: Sequence[Mapping[str, Any]],
    *,
    baseline: float | None,
) -> str:
    """Per architecture: loss and Kaggle Dice per epoch, train solid and validation dashed,
    each trial named by its hyperparameters; the predict-nothing score as a dotted line."""
    from matplotlib.ticker import MaxNLocator

    models = {str(r["trial_id"]): str(r.get("model", "?")) for r in rows}
    labels = trial_labels(rows)
    scores = {str(r["trial_id"]): _number(r.get(METRIC)) or -1.0 for r in rows}
    archs = sorted({models.get(t, "?") for t in curves})
    fig = _figure(13, 3.2 * len(archs))
    for row, arch in enumerate(archs):
        loss_ax = fig.add_subplot(len(archs), 2, 2 * row + 1)
        dice_ax = fig.add_subplot(len(archs), 2, 2 * row + 2)
        trials = sorted(
            (t for t in curves if models.get(t, "?") == arch), key=lambda t: -scores.get(t, -1.0)
        )
        for i, trial in enumerate(trials):
            named = i < CURVE_LEGEND_TRIALS
            colour = f"C{i % 10}" if named else "0.75"
            records = curves[trial]
            epochs = [
                _number(r.get("epoch", r.get("training_iteration", k + 1)))
                for k, r in enumerate(records)
            ]
            for ax, key in ((loss_ax, "loss"), (dice_ax, "kaggle_dice")):
                for prefix, style in (("", "-"), ("val_", "--")):
                    ys = [_number(r.get(prefix + key)) for r in records]
                    if any(y is not None for y in ys):
                        label = labels.get(trial, trial) if named and prefix else "_nolegend_"
                        ax.plot(epochs, ys, style, color=colour, marker=".", label=label)
        if baseline is not None:
            dice_ax.axhline(baseline, color="red", ls=":", lw=1.2, label="predict nothing (val)")
        loss_ax.set_title(f"{arch}: loss")
        dice_ax.set_title(f"{arch}: Kaggle Dice")
        for ax in (loss_ax, dice_ax):
            ax.set_xlabel("epoch")
            ax.xaxis.set_major_locator(MaxNLocator(integer=True))
            ax.grid(alpha=0.3)
        title = None if len(trials) <= CURVE_LEGEND_TRIALS else "best trials (others grey)"
        dice_ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0), title=title)
    fig.tight_layout()
    named = [labels.get(t, t) for t in curves]
    return _png(fig, "learning curves: " + "; ".join(named))


def plot_parallel(
    rows: Sequence[Mapping[str, Any]], axes: Sequence[Axis], *, baseline: float | None
) -> str:
    """Parallel coordinates: one vertical axis per varying hyperparameter and one for the
    validation score, one line per finished trial, coloured by its score (best on top)."""
    import matplotlib.pyplot as plt
    from matplotlib.cm import ScalarMappable
    from matplotlib.colors import Normalize

    scores = [float(r[METRIC]) for r in rows]
    low = min([*scores, *([baseline] if baseline is not None else [])])
    high = max(scores)
    if high - low < 1e-9:
        low, high = low - 0.01, high + 0.01
    score_axis = Axis(METRIC, None, low, high)
    every = [*axes, score_axis]
    cmap, norm = plt.get_cmap("viridis"), Normalize(min(scores), max(scores) + 1e-12)
    fig = _figure(max(7.0, 2.0 * len(every) + 2), 4.8)
    ax = fig.add_subplot(1, 1, 1)
    for row, score in sorted(zip(rows, scores, strict=True), key=lambda p: p[1]):
        ys = [a.position(_hparam_value(row.get(a.name))) for a in axes]
        ys.append(score_axis.position(score))
        ax.plot(range(len(every)), ys, color=cmap(norm(score)), lw=2, alpha=0.85, marker="o")
    for x, axis in enumerate(every):
        ax.plot([x, x], [0, 1], color="black", lw=1)
        for position, text in _axis_ticks(axis, [_hparam_value(r.get(axis.name)) for r in rows]):
            ax.plot([x - 0.03, x], [position, position], color="black", lw=1)
            ax.text(
                x - 0.05,
                position,
                text,
                ha="right",
                va="center",
                fontsize=8,
                zorder=5,
                bbox={"facecolor": "white", "edgecolor": "none", "alpha": 0.8, "pad": 1},
            )
    if baseline is not None:
        y = score_axis.position(baseline)
        ax.plot([len(axes) - 0.1, len(axes) + 0.1], [y, y], color="red", lw=2)
        ax.text(
            len(axes) + 0.12,
            y,
            f"predict nothing\n{baseline:.4f}",
            color="red",
            fontsize=8,
            va="center",
        )
    ax.set_xticks(range(len(every)), [a.name for a in every], fontsize=9)
    ax.set_xlim(-0.6, len(every) - 0.4)
    ax.set_ylim(-0.2, 1.05)
    ax.set_yticks([])
    for side in ("left", "right", "top"):
        ax.spines[side].set_visible(False)
    fig.colorbar(ScalarMappable(norm, cmap), ax=ax, label=METRIC, pad=0.02)
    fig.tight_layout()
    names = ", ".join(a.name for a in axes)
    return _png(fig, f"parallel coordinates: {names} against val_kaggle_dice, {len(rows)} trials")


def _axis_ticks(axis: Axis, values: Sequence[Any]) -> list[tuple[float, str]]:
    if axis.choices is not None:
        ticks = [(axis.position(c), _shown(c)) for c in axis.choices]
    else:
        scale = (lambda v: math.log10(v), lambda v: 10**v) if axis.log else (float, float)
        steps = np.linspace(scale[0](axis.low), scale[0](axis.high), 5)
        fmt = "{:.4f}" if axis.name == METRIC else "{:.3g}"
        ticks = [(axis.position(scale[1](s)), fmt.format(scale[1](s))) for s in steps]
    if any(v is None for v in values):
        ticks.append((axis.position(None), "n/a"))
    return ticks


def plot_importance(importances: Mapping[str, float], *, top: int, trials: int) -> str:
    """Horizontal bars, most important on top, each with its share written beside it."""
    ranked = sorted(importances.items(), key=lambda kv: (kv[1], kv[0]))
    fig = _figure(7, 0.5 * len(ranked) + 1.4)
    ax = fig.add_subplot(1, 1, 1)
    ax.barh(range(len(ranked)), [v for _, v in ranked], color="C0")
    for y, (_, value) in enumerate(ranked):
        ax.text(value + 0.01, y, f"{value:.2f}", va="center", fontsize=8)
    ax.set_yticks(range(len(ranked)), [k for k, _ in ranked])
    ax.set_xlim(0, 1.1)
    ax.set_xlabel(f"PED-ANOVA importance (top {top} of {trials} trials against all)")
    ax.grid(axis="x", alpha=0.3)
    fig.tight_layout()
    text = ", ".join(f"{k} {v:.2f}" for k, v in reversed(ranked))
    return _png(fig, f"hyperparameter importance: {text}")


def plot_hparams(rows: Sequence[Mapping[str, Any]], axes: Sequence[Axis]) -> str:
    """Validation Kaggle Dice against each varying hyperparameter (the architecture aside), one
    point per finished trial, coloured by architecture; a blank value is drawn at n/a."""
    cols = min(3, len(axes))
    nrows = math.ceil(len(axes) / cols)
    fig = _figure(4.2 * cols, 3.2 * nrows)
    archs = sorted({str(r.get("model")) for r in rows})
    rng = np.random.default_rng(0)
    for k, axis in enumerate(axes):
        ax = fig.add_subplot(nrows, cols, k + 1)
        blank = any(_hparam_value(r.get(axis.name)) is None for r in rows)
        categories = [*(["n/a"] if blank else []), *map(_shown, axis.choices or ())]
        for a, arch in enumerate(archs):
            points = [
                (_hparam_value(r.get(axis.name)), float(r[METRIC]))
                for r in rows
                if str(r.get("model")) == arch
            ]
            if axis.choices is None:  # a numeric range: a blank value has no place on it
                points = [p for p in points if p[0] is not None]
                xs = [float(p[0]) for p in points]
            else:
                shown = ["n/a" if p[0] is None else _shown(p[0]) for p in points]
                xs = [categories.index(v) + rng.uniform(-0.12, 0.12) for v in shown]
            if points:
                ax.scatter(xs, [p[1] for p in points], color=f"C{a}", label=arch, alpha=0.8)
        if axis.choices is not None:
            ax.set_xticks(range(len(categories)), categories)
        elif axis.log:
            ax.set_xscale("log")
        ax.set_xlabel(
            axis.name + (" (blank trials left out)" if blank and not axis.choices else "")
        )
        ax.set_ylabel("val Kaggle Dice")
        ax.grid(alpha=0.3)
    fig.axes[0].legend(fontsize=7)
    fig.tight_layout()
    return _png(fig, "validation Dice against " + ", ".join(a.name for a in axes))


def hparams_section(finished: Sequence[Mapping[str, Any]], axes: Sequence[Axis]) -> str:
    others = [a for a in axes if a.name != "model"]
    if len(finished) < 2 or not others:
        return _note(
            f"No hyperparameter besides the architecture varies across the {len(finished)} "
            "finished trials: nothing to plot against."
        )
    return plot_hparams(finished, others)


def plot_per_class(metrics: Mapping[str, Any]) -> str:
    """Grouped bars: test Dice per class (tuned post-processing), every promoted model + ensemble."""
    classes = list(metrics["class_names"])
    entries = [(m["name"], m["test"]["tuned"]["per_class"]) for m in metrics["models"]]
    entries.append(("ensemble", metrics["ensemble"]["test"]["tuned"]["per_class"]))
    fig = _figure(max(6, 1.6 * len(classes) * max(1, len(entries) / 3)), 3.6)
    ax = fig.add_subplot(1, 1, 1)
    width = 0.8 / len(entries)
    for i, (name, per_class) in enumerate(entries):
        xs = np.arange(len(classes)) + (i - (len(entries) - 1) / 2) * width
        colour = "black" if name == "ensemble" else f"C{i}"
        ax.bar(xs, [per_class[c] for c in classes], width, label=name, color=colour)
    ax.set_xticks(range(len(classes)), classes)
    ax.set_ylabel("test Dice (tuned)")
    ax.set_ylim(0, 1.05)
    ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    ax.grid(axis="y", alpha=0.3)
    fig.tight_layout()
    return _png(fig, "test Dice per class of " + ", ".join(name for name, _ in entries))


def _tint(image: np.ndarray, masks: np.ndarray) -> np.ndarray:
    rgb = np.repeat(image[..., None], 3, axis=2).astype(np.float32)
    for c in range(masks.shape[-1]):
        colour = np.asarray(CLASS_COLOURS[c % len(CLASS_COLOURS)], np.float32)
        m = masks[..., c]
        rgb[m] = 0.45 * rgb[m] + 0.55 * colour
    return rgb.astype(np.uint8)


def _present(masks: np.ndarray, class_names: Sequence[str]) -> str:
    """Names of the classes with any pixel in (H, W, C) masks, so each class is read by name."""
    names = [n for c, n in enumerate(class_names) if masks[..., c].any()]
    return ", ".join(names) or "no defect"


def _image_title(overlays: Mapping[str, np.ndarray], i: int) -> str:
    if "image_id" in overlays:
        return str(overlays["image_id"][i])
    return f"test image #{int(overlays['index'][i])}"


def plot_overlays(overlays: Mapping[str, np.ndarray], class_names: Sequence[str]) -> str:
    """Rows of test images: the image, ground truth and ensemble prediction, tinted per class."""
    from matplotlib.patches import Patch

    images, truth, predicted = overlays["image"], overlays["truth"], overlays["predicted"]
    count = images.shape[0]
    aspect = images.shape[2] / images.shape[1]
    fig = _figure(min(16, 3 * 3 * max(1, aspect / 1.5)), 2.6 * count / max(1, aspect / 1.5))
    for i in range(count):
        # A split of several sizes is stored zero-padded to its largest: cut the padding off.
        height, width = overlays["size"][i] if "size" in overlays else images[i].shape[:2]
        image, true, pred = (a[i][:height, :width] for a in (images, truth, predicted))
        panels = (
            (image, _image_title(overlays, i)),
            (_tint(image, true), f"ground truth: {_present(true, class_names)}"),
            (_tint(image, pred), f"ensemble: {_present(pred, class_names)}"),
        )
        for j, (pixels, title) in enumerate(panels):
            ax = fig.add_subplot(count, 3, 3 * i + j + 1)
            ax.imshow(pixels, cmap="gray" if pixels.ndim == 2 else None, vmin=0, vmax=255)
            ax.set_title(title, fontsize=9)
            ax.axis("off")
    handles = [
        Patch(color=np.asarray(CLASS_COLOURS[c % len(CLASS_COLOURS)]) / 255, label=name)
        for c, name in enumerate(class_names)
    ]
    fig.legend(handles=handles, loc="lower center", ncol=len(handles), fontsize=9)
    fig.tight_layout(rect=(0, 0.04, 1, 1))
    return _png(fig, f"predictions on {count} test images against their ground truth")


def plot_cost(rows: Sequence[Mapping[str, Any]]) -> str:
    """Wall and device seconds of every trial."""
    names = [str(r["trial_id"]) for r in rows]
    wall = [_number(r.get("wall_s")) or 0.0 for r in rows]
    device = [_number(r.get("device_s")) or 0.0 for r in rows]
    fig = _figure(max(6, 0.45 * len(rows) + 2), 3.4)
    ax = fig.add_subplot(1, 1, 1)
    xs = np.arange(len(rows))
    ax.bar(xs - 0.2, wall, 0.4, label="wall s")
    ax.bar(xs + 0.2, device, 0.4, label="device s")
    ax.set_xticks(xs, names, rotation=60, ha="right", fontsize=7)
    ax.set_ylabel("seconds")
    ax.legend(fontsize=8)
    ax.grid(axis="y", alpha=0.3)
    fig.tight_layout()
    return _png(fig, f"wall and device seconds of {len(rows)} trials")


# --- HTML ----------------------------------------------------------------------------------------


def _cell(value: Any, kind: str = "score") -> str:
    """One table cell; `kind` is how its column's numbers read (see `_column_kinds`)."""
    number = _number(value) if not isinstance(value, bool) else None
    if number is not None and kind == "integer":
        return f'<td data-value="{number}">{int(number)}</td>'
    if number is not None and not isinstance(value, str | int):
        text = f"{number:.4f}" if kind == "score" else f"{number:.4f}".rstrip("0").rstrip(".")
        return f'<td data-value="{number}">{text}</td>'
    if number is not None:
        return f'<td data-value="{number}">{html.escape(str(value))}</td>'
    text = "" if value is None or (isinstance(value, float) and math.isnan(value)) else str(value)
    return f'<td class="text">{html.escape(text)}</td>'


LEADERBOARD_HIDDEN = {"checkpoint"}


def _head(column: str, numeric: bool) -> str:
    attributes = f'data-numeric="{int(numeric)}"'
    if column == METRIC:
        attributes += ' data-initial-sort="1"'  # best trial first when the page opens
    if not numeric:
        attributes += ' class="text"'
    return f"<th {attributes}>{html.escape(column)}</th>"


def _dataset_label(experiment: Mapping[str, Any]) -> str:
    """The dataset's name, at the top of experiment.json or inside its resolved config."""
    for holder in (experiment, experiment.get("config") or {}):
        dataset = holder.get("dataset", "") if isinstance(holder, Mapping) else ""
        if isinstance(dataset, Mapping):
            dataset = dataset.get("name", "")
        if dataset:
            return str(dataset)
    return "(not recorded in experiment.json)"


def _column_kinds(rows: Sequence[Mapping[str, Any]], numeric: set[str]) -> dict[str, str]:
    """integer (filters, epochs, params: whole numbers, even when a CSV column holding blanks
    was read as floats), score (Dice and loss: always four decimals) or number (the rest)."""
    kinds = {}
    for column in numeric:
        values = [_number(r.get(column)) for r in rows]
        values = [v for v in values if v is not None]
        if "dice" in column or "loss" in column:
            kinds[column] = "score"
        elif values and all(float(v).is_integer() for v in values):
            kinds[column] = "integer"
        else:
            kinds[column] = "number"
    return kinds


def _row_start(row: Mapping[str, Any], promoted: set[str]) -> str:
    if row.get("status") == BASELINE_STATUS:
        return '<tr class="baseline">'
    return '<tr class="promoted">' if str(row.get("trial_id")) in promoted else "<tr>"


def baseline_note(rows: Sequence[Mapping[str, Any]], experiment: Mapping[str, Any]) -> str:
    """One line: the predict-nothing score on the search's validation images, and the lift."""
    baseline = experiment.get("baseline")
    if not baseline:
        return (
            '<p class="note" id="baseline">This search recorded no predict-nothing baseline '
            "(experiment.json predates it): rerun search.run to add it.</p>"
        )
    scores = [_number(r.get(METRIC)) for r in rows]
    scores = [v for v in scores if v is not None]
    text = (
        f'<p id="baseline">Predicting no defect scores <b>{baseline["kaggle_dice"]:.4f}</b> on '
        f"the {baseline['images']} {html.escape(str(baseline['split']))} images every trial "
        "validated on (the grey row below)"
    )
    if scores:
        lift = max(scores) - float(baseline["kaggle_dice"])
        above = sum(1 for v in scores if v > float(baseline["kaggle_dice"]))
        text += (
            f"; the best trial scores {max(scores):.4f} ({lift:+.4f}), and {above} of "
            f"{len(scores)} trials beat it"
        )
    return text + ".</p>"


def leaderboard_table(rows: Sequence[Mapping[str, Any]], promoted: set[str]) -> str:
    columns = [c for c in rows[0] if c not in LEADERBOARD_HIDDEN] if rows else []
    numeric = {c for c in columns if any(_number(r.get(c)) is not None for r in rows)}
    numeric -= {"trial_id", "status", "model", "error"}
    heads = "".join(_head(c, c in numeric) for c in columns)
    kinds = _column_kinds(rows, numeric)
    body = "\n".join(
        _row_start(r, promoted)
        + "".join(_cell(r.get(c), kinds.get(c, "score")) for c in columns)
        + "</tr>"
        for r in rows
    )
    return (
        f'<div class="wrap"><table id="leaderboard" class="sortable"><thead><tr>{heads}</tr>'
        f"</thead><tbody>\n{body}\n</tbody></table></div>"
    )


def scores_section(metrics: Mapping[str, Any] | None) -> str:
    if metrics is None:
        return (
            '<p class="note" id="scores">Not promoted yet: run '
            "<code>python -m search.promote experiment=NAME</code> for test scores, the tuned "
            "post-processing and the ensemble.</p>"
        )
    gains = metrics["gains_on_test"]
    members = ", ".join(f"{m['name']} ×{m['weight']:.2f}" for m in metrics["ensemble"]["members"])
    rows = [
        (
            "best single model, raw (threshold 0.5)",
            metrics["best_single"],
            gains["best_single_raw"],
        ),
        (
            "best single model, tuned post-processing",
            metrics["best_single"],
            gains["best_single_tuned"],
        ),
        ("ensemble, raw", members, gains["ensemble_raw"]),
        ("ensemble, tuned post-processing", members, gains["ensemble_tuned"]),
    ]
    baseline = gains.get("baseline")
    if baseline is not None:
        rows.append(("predict nothing (the baseline)", "no model", baseline))
    body = "".join(
        f'<tr><td class="text">{html.escape(what)}</td><td class="text">{html.escape(who)}</td>'
        f'<td class="big">{score:.4f}</td>'
        + (f'<td class="lift">{score - baseline:+.4f}</td>' if baseline is not None else "")
        + "</tr>"
        for what, who, score in rows
    )
    lift_head = "<th>lift over predict-nothing</th>" if baseline is not None else ""
    return (
        '<table class="scores" id="scores"><thead><tr><th class="text">test split '
        f'({metrics["splits"]["test"]} images)</th><th class="text">model</th>'
        f"<th>Kaggle Dice</th>{lift_head}</tr></thead><tbody>{body}</tbody></table>"
        f"<p>Post-processing gained {gains['postprocess_gain']:+.4f} on the best single model; "
        f"the ensemble gained {gains['ensemble_gain_over_best_single_tuned']:+.4f} over it "
        f"(both tuned), {gains['total_gain_over_best_single_raw']:+.4f} in all. "
        "Everything was chosen on the validation split; these are test numbers.</p>"
    )


def promoted_table(metrics: Mapping[str, Any]) -> str:
    classes = list(metrics["class_names"])
    heads = "".join(f"<th>{html.escape(c)}</th>" for c in classes)
    lines = []
    entries = [*metrics["models"], {"name": "ensemble", **metrics["ensemble"]}]
    for m in entries:
        post = {e["name"]: e for e in m["postprocess"]["classes"]}
        cells = "".join(
            f"<td>{m['test']['tuned']['per_class'][c]:.4f}<br><small>t={post[c]['threshold']:.2f} "
            f"a={post[c]['min_area']} g={post[c]['gate'] or 'off'}</small></td>"
            for c in classes
        )
        lines.append(
            f'<tr><td class="text">{html.escape(m["name"])}</td>'
            f"<td>{m['test']['raw']['kaggle_dice']:.4f}</td>"
            f"<td>{m['test']['tuned']['kaggle_dice']:.4f}</td>{cells}</tr>"
        )
    return (
        '<table id="promoted"><thead><tr><th class="text">model</th><th>test raw</th>'
        f"<th>test tuned</th>{heads}</tr></thead><tbody>{''.join(lines)}</tbody></table>"
    )


def _note(text: str, *, id: str = "") -> str:
    """A paragraph saying what a section lacks and why (the text is HTML, escaped by callers)."""
    attribute = f' id="{id}"' if id else ""
    return f'<p class="note"{attribute}>{text}</p>'


def _hours(seconds: float) -> str:
    return f"{seconds:,.0f} s ({seconds / 3600:.2f} h)"


def parallel_section(
    finished: Sequence[Mapping[str, Any]],
    axes: Sequence[Axis],
    fixed: Sequence[str],
    *,
    left_out: int,
    baseline: float | None,
) -> str:
    if len(finished) < 2:
        return _note(
            f"Parallel coordinates need at least two finished trials; this search has "
            f"{len(finished)}."
        )
    if not axes:
        return _note(
            f"No hyperparameter varies across the {len(finished)} finished trials "
            f"(the same in all: {html.escape(', '.join(fixed)) or 'none recorded'})."
        )
    text = f"<p>The {len(finished)} finished trials"
    if left_out:
        text += f" ({left_out} errored or unfinished left out)"
    text += ", one line each, coloured by validation Kaggle Dice, best drawn on top."
    if any(_hparam_value(r.get(a.name)) is None for r in finished for a in axes):
        text += " A blank hyperparameter (one the architecture does not have) sits at <i>n/a</i>."
    if fixed:
        text += f" The same in every trial that has it: {html.escape(', '.join(fixed))}."
    text += "</p>"
    return text + plot_parallel(finished, axes, baseline=baseline)


def importance_section(finished: Sequence[Mapping[str, Any]], axes: Sequence[Axis]) -> str:
    if len(finished) < 2:
        return _note(
            f"Importance needs at least two finished trials; this search has {len(finished)}."
        )
    if len(axes) < 2:
        only = f"only <code>{html.escape(axes[0].name)}</code> varies" if axes else "none varies"
        return _note(
            f"Of the hyperparameters, {only} across the {len(finished)} finished trials, so there "
            "is nothing to rank: importance compares two or more that vary."
        )
    importances = param_importances(finished, axes)
    quantile = ped_anova_quantile(len(finished))
    top = math.ceil(quantile * len(finished))
    text = (
        "<p>Optuna's PED-ANOVA (<code>PedAnovaImportanceEvaluator</code>, deterministic) on an "
        f"in-memory study of the {len(finished)} finished trials: how differently each "
        f"hyperparameter's values are spread among the best {top} trials (top {quantile:.0%} "
        "by validation Kaggle Dice) than among all of them, normalised to sum to 1."
    )
    if top < 5:
        text += (
            f" Optuna advises at least five trials in that top group; with {top}, read it as "
            "a hint, not a measurement."
        )
    if not any(v > 0 for v in importances.values()):
        return (
            text
            + "</p>"
            + _note(
                "Every importance is zero: the best trials' values are spread as all trials' are."
            )
        )
    return text + "</p>" + plot_importance(importances, top=top, trials=len(finished))


def curves_section(
    experiment_dir: Path,
    curves: Curves,
    rows: Sequence[Mapping[str, Any]],
    *,
    baseline: float | None,
) -> str:
    name = html.escape(experiment_dir.name)
    if not curves.trials:
        if curves.source == "tune":
            return _note(
                "tune/ holds no per-epoch results yet (no progress.csv or result.json in its "
                "trial folders)."
            )
        return _note(
            f"No per-epoch results: this folder has neither tune/ (Ray's trial folders, which a "
            f"committed results folder leaves out) nor {CURVES_FILE} (which <code>python -m "
            f"search.report experiment={name}</code> writes whenever tune/ is there). Rerun the "
            f"report where the search ran and keep {CURVES_FILE} with the results."
        )
    if curves.source == "tune":
        text = f"<p>From tune/&lt;trial&gt;/progress.csv (or result.json) of {len(curves.trials)} trials"
        if (experiment_dir / CURVES_FILE).is_file():
            text += f"; kept in {CURVES_FILE} too, so they can be redrawn without tune/"
    else:
        text = f"<p>From {CURVES_FILE} ({len(curves.trials)} trials; tune/ is not in this folder)"
    text += (
        ". Solid lines are training, dashed validation; each trial is named by its architecture "
        "and hyperparameters, and the dotted red line is predicting nothing on the validation "
        "images.</p>"
    )
    labels = trial_labels(rows)
    absent = [
        f"{labels[str(r['trial_id'])]} ({r.get('status')})"
        for r in rows
        if str(r["trial_id"]) not in curves.trials
    ]
    if absent:
        text += _note("No per-epoch results for: " + html.escape("; ".join(absent)) + ".")
    return text + plot_learning_curves(curves.trials, rows, baseline=baseline)


def overlays_section(experiment_dir: Path, metrics: Mapping[str, Any]) -> str:
    overlay_file = experiment_dir / "final" / "overlays.npz"
    if not overlay_file.is_file():
        return _note(
            "final/overlays.npz is not in this folder (<code>search.promote</code> writes it; a "
            "committed results folder may leave it out): rerun <code>python -m search.promote "
            f"experiment={html.escape(experiment_dir.name)}</code> to draw the predictions."
        )
    with np.load(overlay_file) as overlays:
        return plot_overlays(dict(overlays), metrics["class_names"])


def result_span_s(curves: Mapping[str, Sequence[Mapping[str, Any]]]) -> float | None:
    """Seconds from the first epoch's start to the last epoch's result, over every trial."""
    starts, ends = [], []
    for records in curves.values():
        for record in records:
            stamp = _number(record.get("timestamp"))
            if stamp is not None:
                ends.append(stamp)
                starts.append(stamp - (_number(record.get("time_this_iter_s")) or 0.0))
    return max(ends) - min(starts) if ends else None


def _experiment_field(
    experiment_dir: Path, experiment: Mapping[str, Any], key: str, kind, what: str
):
    """experiment.json's `key`, None where absent; a value of the wrong kind is named."""
    value = experiment.get(key)
    if value is not None and (not isinstance(value, kind) or isinstance(value, bool)):
        raise ValueError(
            f"{experiment_dir / 'experiment.json'}: {key}={json.dumps(value)[:80]}: expected {what}"
        )
    return value


def cost_section(
    experiment_dir: Path,
    rows: Sequence[Mapping[str, Any]],
    metrics: Mapping[str, Any] | None,
    experiment: Mapping[str, Any],
    curves: Curves,
) -> str:
    wall = sum(_number(r.get("wall_s")) or 0.0 for r in rows)
    device = sum(_number(r.get("device_s")) or 0.0 for r in rows)
    promotion = metrics.get("promotion_s") if metrics else None
    text = (
        f"<p id='cost-total'>Whole search: {len(rows)} trials, {_hours(wall)} of trial wall time "
        f"summed and {_hours(device)} of device time"
    )
    if promotion is not None:
        text += f"; promotion took {promotion:,.0f} s"
    text += ".</p>"
    elapsed = _experiment_field(experiment_dir, experiment, "elapsed_s", int | float, "seconds")
    if elapsed:
        text += (
            f'<p id="elapsed">Elapsed wall time of the search: <b>{_hours(elapsed)}</b>; the '
            f"trials' summed wall time is {wall / elapsed:.2f}× that (trials ran side by side).</p>"
        )
    else:
        text += _note(
            "Elapsed wall time of the search: not recorded (experiment.json has no elapsed_s).",
            id="elapsed",
        )
    span = result_span_s(curves.trials)
    source = "tune/" if curves.source == "tune" else curves.source
    if span:
        text += (
            f"<p id='span'>From the per-epoch results ({html.escape(source)}): the first epoch "
            f"began {_hours(span)} before the last epoch's result (the pauses of a resumed "
            f"search count in it); the summed trial wall time is {wall / span:.2f}× that span."
        )
        sessions = sorted((experiment_dir / "tune").glob("experiment_state-*.json"))
        if len(sessions) > 1:
            text += f" tune/ holds {len(sessions)} Ray sessions: this search was resumed."
        text += "</p>"
    return text + (plot_cost(rows) if rows else "")


def _fact(name: str, value: str | None, *, raw: bool = False) -> str:
    if value is None:
        return f'<tr><th>{name}</th><td class="missing">not recorded in experiment.json</td></tr>'
    return f"<tr><th>{name}</th><td>{value if raw else html.escape(value)}</td></tr>"


# experiment.json keys the reproduce section shows by name; every other key is listed after.
REPRODUCE_KEYS = ("command", "seed", "git_commit", "versions", "config", "elapsed_s", "baseline")


def reproduce_section(experiment_dir: Path, experiment: Mapping[str, Any]) -> str:
    """The command, seed, code and package versions and the resolved config the search used."""
    command = _experiment_field(experiment_dir, experiment, "command", str, "a string")
    commit = _experiment_field(experiment_dir, experiment, "git_commit", str, "a string")
    versions = _experiment_field(experiment_dir, experiment, "versions", dict, "{package: version}")
    seed = experiment.get("seed")
    rows = [
        _fact(
            "command",
            f'<pre class="command">{html.escape(command)}</pre>' if command else None,
            raw=True,
        ),
        _fact("seed", None if seed is None else str(seed)),
        _fact("code (git commit)", commit),
        _fact(
            "package versions",
            ", ".join(f"{k} {v}" for k, v in sorted(versions.items())) if versions else None,
        ),
    ]
    rows += [
        _fact(html.escape(k), json.dumps(v, default=str))
        for k, v in experiment.items()
        if k not in REPRODUCE_KEYS
    ]
    config = experiment.get("config")
    config_html = (
        "<details><summary>Resolved config (experiment.json <code>config</code>)</summary>"
        f"<pre>{html.escape(json.dumps(config, indent=1, default=str))}</pre></details>"
        if config
        else _note("Resolved config: not recorded in experiment.json.")
    )
    return f'<table class="facts" id="facts">{"".join(rows)}</table>{config_html}' + sources_table(
        experiment_dir
    )


def sources_table(experiment_dir: Path) -> str:
    """Every file the page reads, whether this folder has it, and what it is drawn into."""
    name = html.escape(experiment_dir.name)
    tune = experiment_dir / "tune"
    trial_dirs = sum(1 for p in tune.iterdir() if p.is_dir()) if tune.is_dir() else 0
    entries = (
        ("leaderboard.csv", "the leaderboard, parallel coordinates, importance, cost", ""),
        (
            "experiment.json",
            "the baseline, the facts above, the elapsed time",
            "written by search.run",
        ),
        (
            "tune/",
            f"learning curves ({trial_dirs} trial folders)" if trial_dirs else "learning curves",
            "Ray's trial folders; not committed",
        ),
        (
            CURVES_FILE,
            "learning curves where tune/ is absent",
            "written by <code>search.report</code> when tune/ is there",
        ),
        (
            "final/metrics.json",
            "final scores, promoted models, per-class bars",
            f"not promoted: <code>python -m search.promote experiment={name}</code>",
        ),
        ("final/overlays.npz", "predictions on test images", "written by search.promote"),
    )
    body = "".join(
        f"<tr><td><code>{path}</code></td>"
        + (
            "<td>present</td>"
            if (experiment_dir / path.rstrip("/")).exists()
            else f'<td class="missing">missing ({why})</td>'
        )
        + f"<td>{use}</td></tr>"
        for path, use, why in entries
    )
    return (
        f"<p>This page is rebuilt by <code>python -m search.report experiment={name}</code> from "
        "these files of the experiment folder:</p>"
        '<table class="facts" id="sources"><thead><tr><th>file</th><th>here</th>'
        f"<th>drawn into</th></tr></thead><tbody>{body}</tbody></table>"
    )


def build_report(experiment_dir: Path, *, curves: Curves | None = None) -> str:
    """The report's HTML for an experiment folder (`curves`: `load_curves(experiment_dir)`)."""
    experiment_dir = Path(experiment_dir)
    board = load_leaderboard(experiment_dir)  # the trials and the baseline row
    rows = [r for r in board if r.get("status") != BASELINE_STATUS]
    experiment = _read_json(experiment_dir / "experiment.json") or {}
    metrics = _read_json(experiment_dir / "final" / "metrics.json")
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
    tmp = out.with_name(".report.html.tmp")
    tmp.write_text(build_report(experiment_dir, curves=curves), encoding="utf-8")
    tmp.replace(out)
    return out


DEFAULTS: dict[str, Any] = {"experiment": "", "results_dir": "results", "lock_stale_s": 60.0}


def main(argv: Sequence[str]) -> int:
    args = parse_overrides(argv, DEFAULTS, required=("experiment",))
    experiment_dir = resolve_experiment(args["experiment"], args["results_dir"])
    from search.lock import ExperimentLock

    try:
        with ExperimentLock(
            experiment_dir, command="search.report", stale_after_s=args["lock_stale_s"]
        ):
            out = write_report(experiment_dir)
    except (ValueError, RuntimeError) as exc:
        if isinstance(exc, ConfigError):
            raise
        raise ConfigError(str(exc)) from exc
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    run_cli(main)
