"""The report's sections of the search and of its promoted models: each a plot with the text
that reads it, or a note saying what its input lacks, where the plot would be."""

from __future__ import annotations

import html
import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from search.report.curves import CURVES_FILE, Curves
from search.report.hparams import (
    Axis,
    _hparam_value,
    param_importances,
    ped_anova_quantile,
    trial_labels,
)
from search.report.plots import (
    plot_hparams,
    plot_importance,
    plot_learning_curves,
    plot_overlays,
    plot_parallel,
)


def _note(text: str, *, id: str = "") -> str:
    """A paragraph saying what a section lacks and why (the text is HTML, escaped by callers)."""
    attribute = f' id="{id}"' if id else ""
    return f'<p class="note"{attribute}>{text}</p>'


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


def hparams_section(finished: Sequence[Mapping[str, Any]], axes: Sequence[Axis]) -> str:
    others = [a for a in axes if a.name != "model"]
    if len(finished) < 2 or not others:
        return _note(
            f"No hyperparameter besides the architecture varies across the {len(finished)} "
            "finished trials: nothing to plot against."
        )
    return plot_hparams(finished, others)


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
