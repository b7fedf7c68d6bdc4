"""The search's hyperparameters as the report reads them from the leaderboard: the finished
trials, an axis for each hyperparameter that varies, PED-ANOVA importance and trial labels."""

from __future__ import annotations

import math
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from search.records import METRIC, Status, hparam_column
from search.report.values import _number


def hparam_columns(rows: Sequence[Mapping[str, Any]]) -> list[str]:
    """The leaderboard's hyperparameter columns, known by name (`search.records`)."""
    return [c for c in (rows[0] if rows else {}) if hparam_column(c)]


def finished_trials(rows: Sequence[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    """Trials that ran to their end (or were stopped by the scheduler) with a finite score."""
    return [
        r
        for r in rows
        if str(r.get("status", "")).upper() == Status.TERMINATED
        and _number(r.get(METRIC)) is not None
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
