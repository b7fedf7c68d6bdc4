"""The experiment folder's records: what one stage writes and the next reads, typed, each
with one reader and one writer.

    results/<experiment>/
        experiment.json      Experiment          search.run writes; promote, report, console read
        leaderboard.csv|md   TrialRow (a row)    search.sweep.leaderboard writes; promote, report,
                                                 chaos and the benchmarks read (read_leaderboard)
        tune/<trial>/        Tune's own files    Ray writes; search.sweep.leaderboard reads
                                                 result.json
        final/metrics.json   PromotionMetrics    search.promote writes; report reads
        final/ensemble.json  search.promotion.ensemble.EnsembleSpec (its own reader and writer)

The metric every stage ranks by (`METRIC`) and the trial statuses are defined here once, and
every file is replaced by `atomic_write`, so that a reader never sees half of one.
"""

from __future__ import annotations

import csv
import json
import math
import os
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field, fields
from enum import StrEnum
from pathlib import Path
from typing import Any

from data.config import ConfigError

__all__ = [
    "BASELINE_STATUS",
    "ENDED",
    "INPUT_BOUND_SHARE",
    "EXPERIMENT_FILE",
    "EXPERIMENT_VERSION",
    "METRICS_FILE",
    "PromotionMetrics",
    "read_metrics",
    "LEADERBOARD_FILE",
    "METRIC",
    "Experiment",
    "RecordError",
    "Status",
    "TrialRow",
    "atomic_write",
    "hparam_column",
    "read_experiment",
    "read_leaderboard",
    "resolve_experiment",
    "write_experiment",
]

METRIC = "val_kaggle_dice"  # what trials report, the leaderboard ranks by and ASHA/Optuna read
# A trial whose training steps wait for input more than this share of their time is input-bound
# (trials report `input_wait_share` per epoch): the console line and the report count them.
INPUT_BOUND_SHARE = 0.2
EXPERIMENT_FILE = "experiment.json"
LEADERBOARD_FILE = "leaderboard.csv"
EXPERIMENT_VERSION = 1  # experiment.json's format; files from before versioning are 1
METRICS_FILE = "final/metrics.json"
METRICS_VERSION = 1  # final/metrics.json's format; files from before versioning are 1


class Status(StrEnum):
    """A leaderboard row's status: Ray Tune's trial statuses, and the baseline row's."""

    PENDING = "PENDING"
    RUNNING = "RUNNING"
    PAUSED = "PAUSED"
    TERMINATED = "TERMINATED"  # ran to its end, or was stopped by the scheduler: it has scores
    ERROR = "ERROR"  # failed more often than max_failures allows
    BASELINE = "BASELINE"  # the predict-nothing row: never a trial, never promoted


BASELINE_STATUS = Status.BASELINE
ENDED = frozenset({Status.TERMINATED, Status.ERROR})  # Tune will not run these again


class RecordError(ConfigError):
    """A record file that is missing, unreadable or of another version; names the file."""


def atomic_write(path: str | Path, data: str | bytes) -> None:
    """Write beside `path` and rename over it: a reader sees the old file or the new one,
    never half of either, and a full disk leaves the old one in place."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        if isinstance(data, bytes):
            tmp.write_bytes(data)
        else:
            tmp.write_text(data)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def _read_json(path: Path) -> dict[str, Any]:
    if not path.is_file():
        raise RecordError(f"{path} is missing")
    try:
        data = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise RecordError(f"{path}: not valid JSON ({exc})") from exc
    if not isinstance(data, dict):
        raise RecordError(f"{path}: expected a JSON object, found {type(data).__name__}")
    return data


# --- experiment.json -----------------------------------------------------------------------------


@dataclass
class Experiment:
    """What `search.run` records before every launch: enough to rerun, resume and promote.

    Every field has a default, so that a record written by an older checkout (or a hand-made
    one) still reads; the stages that need a field ask for it (`shards_uri`), and the report
    shows "not recorded" for what is absent. Keys this version does not know are kept in
    `extra` and written back, never dropped.
    """

    experiment: str | None = None
    shards: str | None = None
    class_names: list[str] | None = None
    dataset: str | None = None
    image_shape: list[int] | None = None
    input_shape: list[int | None] | None = None
    space: str | None = None
    models: list[str] | None = None
    grid_points: int | None = None
    seed: int | None = None
    metric: str = METRIC
    # Predicting no defect on the images the trials validate on: {split, images, kaggle_dice,
    # per_class}. The floor every trial must clear.
    baseline: dict[str, Any] | None = None
    precision: str | None = None  # what train.precision resolved to on the driver's machine
    command: str | None = None
    git_commit: str | None = None
    versions: dict[str, str] | None = None
    elapsed_s: float | None = None  # wall seconds over every sitting that ended
    sittings: int | None = None
    config: dict[str, Any] | None = None
    version: int = EXPERIMENT_VERSION
    extra: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        return {**{k: v for k, v in data.items() if k != "extra"}, **self.extra}

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=1, default=str) + "\n"

    def shards_uri(self, where: str | Path) -> str:
        """The shards the search trained on; RecordError naming `where` when none is recorded."""
        if not isinstance(self.shards, str) or not self.shards:
            present = ", ".join(k for k, v in self.to_dict().items() if v is not None)
            raise RecordError(f"{where}: no 'shards' URI (keys present: {present})")
        return self.shards


def read_experiment(experiment_dir: str | Path) -> Experiment:
    """experiment.json as an Experiment; RecordError naming the file when it is missing, not
    a JSON object, or of another format version."""
    path = Path(experiment_dir) / EXPERIMENT_FILE
    data = _read_json(path)
    version = data.get("version", 1)
    if version != EXPERIMENT_VERSION:
        raise RecordError(
            f"{path}: format version {version!r}, but this checkout reads version "
            f"{EXPERIMENT_VERSION}: use the checkout that wrote it (git_commit "
            f"{data.get('git_commit')!r})"
        )
    known = {f.name for f in fields(Experiment)} - {"extra"}
    extra = {k: v for k, v in data.items() if k not in known}
    return Experiment(**{k: v for k, v in data.items() if k in known}, extra=extra)


def write_experiment(experiment_dir: str | Path, record: Experiment) -> Path:
    path = Path(experiment_dir) / EXPERIMENT_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(path, record.to_json())
    return path


def resolve_experiment(name: str, results_dir: str | Path = "results") -> Path:
    """results_dir/name, or a clear error listing the experiments that do exist."""
    results = Path(results_dir)
    path = Path(name) if Path(name).is_absolute() else results / name

    def is_experiment(folder: Path) -> bool:
        return (folder / LEADERBOARD_FILE).is_file() or (folder / EXPERIMENT_FILE).is_file()

    if is_experiment(path):
        return path
    existing = sorted(
        p.name for p in (results.iterdir() if results.is_dir() else []) if is_experiment(p)
    )
    listing = ", ".join(existing) if existing else "(none)"
    raise RecordError(
        f"experiment={name}: no experiment at {path.resolve()} (no {LEADERBOARD_FILE} or "
        f"{EXPERIMENT_FILE}); experiments in {results.resolve()}: {listing}"
    )


# --- final/metrics.json -------------------------------------------------------------------------


@dataclass
class PromotionMetrics:
    """What a promotion measured (`search.promotion.scoring.promotion_metrics` builds it):
    every promoted model's and the ensemble's validation and test scores, raw and tuned,
    their post-processing, the predict-nothing baseline on the same images, and the gains.

    The nested parts stay JSON mappings (each model: name, trial_id, model, hparams, file,
    val/test {raw, tuned}, postprocess); the top level is typed. Keys this version does not
    know are kept in `extra`."""

    experiment: str | None = None
    created: str | None = None
    shards: str | None = None
    class_names: list[str] | None = None
    splits: dict[str, int] | None = None  # images scored per split
    tta: bool | None = None
    flips: list[str] | None = None
    gate: bool | None = None
    models: list[dict[str, Any]] = field(default_factory=list)
    ensemble: dict[str, Any] | None = None
    best_single: str | None = None
    baseline: dict[str, Any] | None = None  # predict-nothing on the same val and test images
    gains_on_test: dict[str, float] | None = None
    promotion_s: float | None = None
    # Wall seconds by stage: splits (read the shards), predict (every model), tune+score
    # models (every model tuned on val and scored, over the tuning processes), ensemble (its
    # selection, tuning, scoring and the overlays), and per model its own tuning on val
    # (tune:<name>, inside tune+score models).
    stage_s: dict[str, float] | None = None
    # Peak resident memory (MiB, search.memory.peak_rss_mib) of each process promotion ran: the driver (which
    # loads no model), the prediction process (or each Ray task), the tuning workers.
    peak_rss_mib: dict[str, Any] | None = None
    version: int = METRICS_VERSION
    extra: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_dict(
        cls, data: dict[str, Any], *, where: str | Path = METRICS_FILE
    ) -> PromotionMetrics:
        version = data.get("version", 1)
        if version != METRICS_VERSION:
            raise RecordError(
                f"{where}: format version {version!r}, but this checkout reads version "
                f"{METRICS_VERSION}"
            )
        known = {f.name for f in fields(cls)} - {"extra"}
        extra = {k: v for k, v in data.items() if k not in known}
        return cls(**{k: v for k, v in data.items() if k in known}, extra=extra)

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        return {**{k: v for k, v in data.items() if k != "extra"}, **self.extra}

    def to_json(self) -> str:
        # allow_nan=False: a non-finite number left anywhere fails here, not in a reader that
        # takes the file for standard JSON (a browser's JSON.parse refuses NaN).
        return json.dumps(_json_value(self.to_dict()), indent=2, allow_nan=False) + "\n"


def _json_value(value: Any) -> Any:
    """`value` with NumPy scalars as Python values and NaN or infinity as null, at any depth:
    json's `default` hook is not enough, since it never sees a float (NaN included)."""
    if isinstance(value, dict):
        return {k: _json_value(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_value(v) for v in value]
    if hasattr(value, "item") and not isinstance(value, (str, bytes)):
        value = value.item()
    return None if isinstance(value, float) and not math.isfinite(value) else value


def read_metrics(experiment_dir: str | Path) -> PromotionMetrics | None:
    """final/metrics.json as PromotionMetrics; None when the experiment was not promoted."""
    path = Path(experiment_dir) / METRICS_FILE
    if not path.is_file():
        return None
    return PromotionMetrics.from_dict(_read_json(path), where=path)


# --- leaderboard.csv -----------------------------------------------------------------------------

# The columns that are not hyperparameters: who the row is, and what it scored and cost.
# Every other column is a hyperparameter of the trial's grid point (loss and learning_rate
# included), whatever its position.
IDENTITY_COLUMNS = ("trial_id", "status", "model")
RESULT_COLUMNS = (
    METRIC,
    "lift",
    "val_loss",
    "best_epoch",
    "epochs",
    "params",
    "wall_s",
    "device_s",
    "input_wait",
    "precision",
    "backend",
    "node",
    "checkpoint",
    "error",
)
CLASS_SCORE_PREFIX = "val_dice_"  # val_dice_<class>: the best epoch's Dice of one class


def hparam_column(name: str) -> bool:
    """Whether a leaderboard column holds a hyperparameter (decided by its name alone)."""
    return (
        name not in IDENTITY_COLUMNS
        and name not in RESULT_COLUMNS
        and not name.startswith(CLASS_SCORE_PREFIX)
    )


def _cell(text: str) -> Any:
    """A CSV cell as the value it was written from: '' -> None, '8' -> 8, '0.5' -> 0.5,
    'nan' -> nan (a diverged trial's score is not a missing one), 'True' -> True; anything
    else stays text."""
    if text == "":
        return None
    if text in ("True", "False"):
        return text == "True"
    for kind in (int, float):
        try:
            value = kind(text)
        except ValueError:
            continue
        return value
    return text


@dataclass(frozen=True)
class TrialRow:
    """One leaderboard row: a trial (or the baseline), its hyperparameters by name."""

    trial_id: str
    status: str
    model: str
    hparams: dict[str, Any]
    score: float | None  # the best epoch's METRIC; None when the trial has not scored yet
    checkpoint: str  # as recorded: relative to the experiment folder (older: absolute)
    cells: dict[str, Any]  # every column, typed, in the file's order (for display)

    @property
    def is_baseline(self) -> bool:
        return self.status == Status.BASELINE

    @property
    def completed(self) -> bool:
        """Ran to its end (or was stopped early by the scheduler) with a score."""
        return self.status == Status.TERMINATED and self.score is not None


def read_leaderboard(where: str | Path) -> list[TrialRow]:
    """The rows (the baseline's included) of an experiment folder's leaderboard.csv, or of the
    leaderboard file `where` names, in the file's order."""
    path = Path(where)
    path = path if path.suffix == ".csv" else path / LEADERBOARD_FILE
    if not path.is_file():
        raise RecordError(f"{path} is missing: has the search of this experiment run?")
    with path.open(newline="") as handle:
        reader = csv.DictReader(handle)
        columns = list(reader.fieldnames or [])
        missing = [c for c in ("trial_id", "status", METRIC) if c not in columns]
        if missing:
            raise RecordError(f"{path}: missing column(s) {', '.join(missing)}")
        hparams = [c for c in columns if hparam_column(c)]
        rows = []
        for number, raw in enumerate(reader, start=2):
            if None in raw:
                raise RecordError(f"{path} line {number}: more cells than the header's columns")
            short = [c for c in columns if raw[c] is None]
            if short:
                raise RecordError(
                    f"{path} line {number}: fewer cells than the header's {len(columns)} "
                    f"columns (no {', '.join(short[:3])}{' ...' if len(short) > 3 else ''})"
                )
            cells = {c: _cell(raw[c] or "") for c in columns}
            score = cells[METRIC]
            if score is not None and not isinstance(score, int | float):
                raise RecordError(f"{path} line {number}: {METRIC}={raw[METRIC]!r} is not a number")
            rows.append(
                TrialRow(
                    trial_id=str(raw["trial_id"]),
                    status=str(raw["status"]).upper(),
                    model=str(raw.get("model") or ""),
                    hparams={c: cells[c] for c in hparams},
                    score=None if score is None else float(score),
                    checkpoint=str(raw.get("checkpoint") or ""),
                    cells=cells,
                )
            )
    return rows


def trial_rows(rows: Sequence[TrialRow]) -> list[TrialRow]:
    """The trials' rows, the baseline row left out."""
    return [r for r in rows if not r.is_baseline]
