"""Every trial's per-epoch results: from tune/<trial>/ (Ray Tune's trial folders), or from
CURVES_FILE, the compact copy of them kept beside the leaderboard so that a committed results
folder, which leaves tune/ out, can still draw its learning curves."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from search.records import METRIC, atomic_write
from search.report.values import _number, _read_json
from search.sweep.leaderboard import trial_results


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
        if results.is_file():
            # What the leaderboard reads: result.json, with any epoch a killed driver cut
            # from it (and from progress.csv, copied the same way) taken from the checkpoint.
            records = trial_results(trial_dir, strict=True)
        elif progress.is_file() and progress.stat().st_size > 0:
            try:
                records = pd.read_csv(progress).to_dict(orient="records")
            except (pd.errors.ParserError, pd.errors.EmptyDataError) as exc:
                raise ValueError(f"{progress}: unreadable progress file ({exc})") from exc
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
    atomic_write(out, json.dumps(compact_curves(trials), separators=(",", ":")) + "\n")
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
