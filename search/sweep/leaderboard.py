"""`results/<experiment>/leaderboard.csv|.md`: one row per trial, best validation score first.

Rows are rebuilt from what Tune wrote to disk (each trial's `result.json` and checkpoint
`state.json`), so the same code serves the live refresh, the end of a search and a resumed one.

Every leaderboard carries the predict-nothing baseline on the images the trials validate on:
a `baseline` row (status BASELINE) ranked among the trials, and each trial's `lift` over it.
A trial at or below that row has learned nothing the empty mask does not already score.
"""

from __future__ import annotations

import csv
import json
import math
import warnings
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from search.records import (
    BASELINE_STATUS,
    EXPERIMENT_FILE,
    METRIC,
    RecordError,
    atomic_write,
    read_experiment,
)
from search.sweep.spaces import TRAINING_KEYS, model_hparams

__all__ = [
    "BASELINE_STATUS",
    "METRIC",
    "TrialRecord",
    "baseline_row",
    "input_wait_share",
    "leaderboard_rows",
    "read_baseline",
    "read_results",
    "repair_results",
    "trial_results",
    "write_leaderboard",
]


@dataclass(frozen=True)
class TrialRecord:
    """What Tune knows of a trial that is not on disk: its status, point and error."""

    trial_id: str
    status: str
    point: Mapping[str, Any]
    path: str | None
    error: str = ""
    # The newest result Tune holds in memory: its result.json line may not be flushed yet.
    last_result: Mapping[str, Any] | None = None


def read_results(trial_dir: str | Path | None, *, strict: bool = False) -> list[dict[str, Any]]:
    """The per-epoch results of a trial (result.json holds one JSON object per line).

    A line that does not parse is skipped (one being written right now; the next refresh
    reads it whole), or with `strict` raises a ValueError naming the file and line: a
    finished trial's file must parse whole.
    """
    if not trial_dir:
        return []
    path = Path(trial_dir) / "result.json"
    if not path.is_file():
        return []
    return _parse_results(path, path.read_text().splitlines(), strict=strict)


def _parse_results(path: Path, lines: Sequence[str], *, strict: bool) -> list[dict[str, Any]]:
    rows = []
    for number, line in enumerate(lines, start=1):
        try:
            rows.append(json.loads(line))
        except json.JSONDecodeError as exc:
            if strict and line.strip():
                raise ValueError(f"{path} line {number}: not JSON ({exc})") from exc
            continue
    return rows


def _checkpoint_states(trial_dir: str | Path | None) -> list[tuple[Path, dict[str, Any]]]:
    """(folder, state.json) of each of a trial's checkpoints, in folder order; one that is
    unreadable is left out (a worker killed while its checkpoint was being copied leaves one
    that Tune never registered)."""
    if not trial_dir or not Path(trial_dir).is_dir():
        return []
    states = []
    for state_path in sorted(Path(trial_dir).glob("checkpoint_*/state.json")):
        try:
            state = json.loads(state_path.read_text())
        except (OSError, json.JSONDecodeError) as exc:
            warnings.warn(
                f"{state_path}: unreadable ({exc}); that checkpoint is left out of the trial's row",
                RuntimeWarning,
                stacklevel=2,
            )
            continue
        if isinstance(state, dict):
            states.append((state_path.parent, state))
    return states


def _history(states: Sequence[tuple[Path, dict[str, Any]]]) -> list[dict[str, Any]]:
    """The `history` of the checkpoint with the highest epoch."""
    dated = (s for _, s in states if "epoch" in s)
    newest = max(dated, key=lambda s: int(s["epoch"]), default={})
    return [dict(h) for h in newest.get("history") or [] if "epoch" in h]


def _merge(
    history: Sequence[dict[str, Any]], results: Sequence[dict[str, Any]]
) -> list[dict[str, Any]]:
    """One result per epoch in epoch order: result.json's where it has the epoch."""
    by_epoch = {int(r["epoch"]): r for r in history}
    by_epoch.update({int(r["epoch"]): r for r in results if "epoch" in r})
    return [by_epoch[e] for e in sorted(by_epoch)]


def checkpoint_history(trial_dir: str | Path | None) -> list[dict[str, Any]]:
    """Every epoch's metrics as the trial's newest readable checkpoint carries them (its
    state.json `history`; [] for checkpoints written before it was recorded)."""
    return _history(_checkpoint_states(trial_dir))


def trial_results(trial_dir: str | Path | None, *, strict: bool = False) -> list[dict[str, Any]]:
    """A trial's per-epoch results, one per epoch in epoch order: result.json's, with any
    epoch it lacks taken from the checkpoint history (see `repair_results`); `strict` as in
    `read_results`."""
    return _merge(checkpoint_history(trial_dir), read_results(trial_dir, strict=strict))


def repair_results(trial_dir: str | Path | None) -> list[int]:
    """Rewrite a trial's result.json whole when epochs are missing from it that its newest
    checkpoint recorded, or it holds lines that do not parse; returns the epochs restored.

    Tune copies result.json from the driver's staging folder over the trial folder's in
    place, so a driver killed mid-copy truncates it, and a resumed trial appends to what is
    left. Run only while no Tune driver is syncing this experiment (before or after a run).
    """
    if not trial_dir or not Path(trial_dir).is_dir():
        return []
    path = Path(trial_dir) / "result.json"
    lines = path.read_text().splitlines() if path.is_file() else []
    kept = _parse_results(path, lines, strict=False)
    damaged = len(kept) != sum(1 for line in lines if line.strip())
    history = checkpoint_history(trial_dir)
    lost = sorted(
        {int(r["epoch"]) for r in history} - {int(r["epoch"]) for r in kept if "epoch" in r}
    )
    if not lost and not damaged:
        return []
    atomic_write(path, "".join(json.dumps(r) + "\n" for r in _merge(history, kept)))
    return lost


def _score(value: Any) -> float:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return -math.inf
    return number if math.isfinite(number) else -math.inf


def _best(states: Sequence[tuple[Path, dict[str, Any]]]) -> str:
    """Absolute path of the kept checkpoint with the best val_kaggle_dice, or ''."""
    best, best_score = "", -math.inf
    for folder, state in states:
        score = _score(state.get("metrics", {}).get(METRIC))
        if not best or score > best_score:
            best, best_score = str(folder.resolve()), score
    return best


def read_baseline(experiment_dir: str | Path) -> dict[str, Any] | None:
    """The predict-nothing score `search.run` recorded in experiment.json; None while the
    folder has no record yet. A record that exists but cannot be read is said (a warning
    naming the file and why), and the leaderboard goes on without the baseline row."""
    if not (Path(experiment_dir) / EXPERIMENT_FILE).exists():
        return None
    try:
        return read_experiment(experiment_dir).baseline
    except RecordError as exc:
        warnings.warn(
            f"{exc}; the leaderboard has no predict-nothing row", RuntimeWarning, stacklevel=2
        )
        return None


def baseline_row(baseline: Mapping[str, Any], class_names: Sequence[str]) -> dict[str, Any]:
    """The leaderboard row of predicting no defect on the validation images."""
    row: dict[str, Any] = {
        "trial_id": "baseline",
        "status": BASELINE_STATUS,
        "model": "predict-nothing",
        METRIC: float(baseline["kaggle_dice"]),
        "lift": 0.0,
    }
    for name in class_names:
        row[f"val_dice_{name}"] = float(baseline["per_class"][name])
    return row


def _lift(score: Any, baseline: Mapping[str, Any] | None) -> Any:
    value = _score(score)
    if baseline is None or not math.isfinite(value):
        return ""
    # + 0.0 turns the -0.0 of a score a hair under the baseline into 0.0 (printed "0", not "-0").
    return round(value - float(baseline["kaggle_dice"]), 4) + 0.0


def input_wait_share(epochs: Iterable[Mapping[str, Any]]) -> Any:
    """The share of the training steps' time spent waiting for input, over the epochs that
    measured it (seconds waited / seconds trained, from `input_wait_s` and `train_s`), or ""
    where none did (trials of searches from before the measure)."""
    waited = trained = 0.0
    for epoch in epochs:
        wait, train = epoch.get("input_wait_s"), epoch.get("train_s")
        if isinstance(wait, int | float) and isinstance(train, int | float) and train > 0:
            waited, trained = waited + float(wait), trained + float(train)
    return round(min(waited / trained, 1.0), 4) if trained > 0 else ""


def _trial_row(
    record: TrialRecord, class_names: Sequence[str], baseline: Mapping[str, Any] | None = None
) -> dict[str, Any]:
    states = _checkpoint_states(record.path)  # read once: the history and the best
    results = _merge(_history(states), read_results(record.path))
    if record.last_result and "epoch" in record.last_result:
        results.append(dict(record.last_result))
    by_epoch = {int(r["epoch"]): r for r in results if "epoch" in r}
    best = max(by_epoch.values(), key=lambda r: _score(r.get(METRIC)), default={})
    last = results[-1] if results else {}
    row: dict[str, Any] = {
        "trial_id": record.trial_id,
        "status": record.status,
        "model": record.point.get("model", ""),
    }
    row.update(model_hparams(record.point))
    row["loss"] = record.point.get("loss", "")
    row[METRIC] = best.get(METRIC, "")
    if baseline is not None:
        row["lift"] = _lift(row[METRIC], baseline)
    for name in class_names:
        row[f"val_dice_{name}"] = best.get(f"val_dice_{name}", "")
    row["val_loss"] = best.get("val_loss", "")
    row["best_epoch"] = best.get("epoch", "")
    row["epochs"] = max(by_epoch, default=0)
    row["params"] = last.get("params", "")
    row["wall_s"] = round(float(last["time_total_s"]), 1) if "time_total_s" in last else ""
    row["device_s"] = round(sum(float(r.get("epoch_s", 0.0)) for r in by_epoch.values()), 1)
    row["input_wait"] = input_wait_share(by_epoch.values())
    row["learning_rate"] = record.point.get("learning_rate", "")
    row["precision"] = str(last.get("precision", ""))
    row["backend"] = str(last.get("backend", ""))
    # The host a person can find; Ray's node id only where a trial did not report one.
    row["node"] = str(last.get("host") or str(last.get("node_id", ""))[:12])
    row["checkpoint"] = _best(states)
    row["error"] = " ".join(record.error.split())[:300]
    return row


def leaderboard_rows(
    records: Iterable[TrialRecord],
    *,
    class_names: Sequence[str],
    baseline: Mapping[str, Any] | None = None,
) -> list[dict[str, Any]]:
    """One row per trial, best val_kaggle_dice first (unscored trials last), same columns.

    With a `baseline`, its row is ranked among the trials, above those that tie with it.
    """
    rows = [_trial_row(r, class_names, baseline) for r in records]
    if baseline is not None:
        rows.append(baseline_row(baseline, class_names))
    rows.sort(key=lambda r: (-_score(r[METRIC]), r["status"] != BASELINE_STATUS, r["trial_id"]))
    columns = _columns(rows)
    return [{c: row.get(c, "") for c in columns} for row in rows]


def _columns(rows: Sequence[Mapping[str, Any]]) -> list[str]:
    """trial_id, status, model, <hyperparameters>, loss, metrics..., checkpoint, error."""
    head = ["trial_id", "status", "model"]
    hparams: list[str] = []
    tail: list[str] = []
    for row in rows:
        keys = list(row)
        if "loss" not in keys:  # the baseline row: metrics only
            keys.insert(3, "loss")
        for key in keys[3 : keys.index("loss")]:
            if key not in hparams and key not in TRAINING_KEYS:
                hparams.append(key)
        for key in keys[keys.index("loss") :]:
            if key not in tail:
                tail.append(key)
    return head + sorted(hparams) + tail


def markdown_cell(value: Any) -> str:
    """A table cell: a float to four decimals without trailing zeros (0.7132, 6.59), whole
    from 1000 up (1235); None blank; '|' escaped."""
    if isinstance(value, float):
        return f"{value:.4f}".rstrip("0").rstrip(".") if abs(value) < 1000 else f"{value:.0f}"
    return "" if value is None else str(value).replace("|", "\\|")


def markdown_table(rows: Sequence[Mapping[str, Any]]) -> list[str]:
    """The lines of a Markdown table of `rows` (the first row's keys are the columns)."""
    columns = list(rows[0])
    lines = ["| " + " | ".join(columns) + " |", "|" + "|".join("---" for _ in columns) + "|"]
    return lines + [
        "| " + " | ".join(markdown_cell(row[c]) for c in columns) + " |" for row in rows
    ]


def _summary(rows: Sequence[Mapping[str, Any]], baseline: Mapping[str, Any] | None) -> str:
    if baseline is None:
        return ""
    text = (
        f"Predict-nothing baseline on the same {baseline['images']} {baseline['split']} images: "
        f"**{float(baseline['kaggle_dice']):.4f}**."
    )
    trials = [
        r for r in rows if r["status"] != BASELINE_STATUS and _lift(r[METRIC], baseline) != ""
    ]
    if trials:
        best = max(trials, key=lambda r: _score(r[METRIC]))
        above = sum(1 for r in trials if float(r["lift"]) > 0)
        text += (
            f" Best trial {best['trial_id']}: {float(best[METRIC]):.4f} "
            f"({float(best['lift']):+.4f}); {above} of {len(trials)} scored trials beat it."
        )
    return text


def _markdown(
    rows: Sequence[Mapping[str, Any]], title: str, baseline: Mapping[str, Any] | None = None
) -> str:
    lines = [f"# Leaderboard: {title}", ""]
    summary = _summary(rows, baseline)
    if summary:
        lines += [summary, ""]
    if not any(r["status"] != BASELINE_STATUS for r in rows):
        return "\n".join(lines + ["(no trials yet)", ""])
    return "\n".join(lines + markdown_table(rows)) + "\n"


def relative_checkpoint(path: str, experiment_dir: str | Path) -> str:
    """`path` relative to the experiment folder when it lies inside it, else unchanged."""
    if not path:
        return path
    try:
        return Path(path).resolve().relative_to(Path(experiment_dir).resolve()).as_posix()
    except ValueError:
        return path


def resolve_checkpoint(recorded: str, experiment_dir: str | Path) -> Path:
    """A leaderboard's checkpoint as a path.

    Leaderboards hold paths relative to the experiment folder. Older ones hold absolute
    paths: one that no longer exists (the experiment was copied to another machine, or a
    cluster's shared storage is mounted elsewhere) is looked up under this folder's tune/.
    """
    folder = Path(experiment_dir)
    path = Path(recorded)
    if not path.is_absolute():
        return folder / path
    if path.exists() or "tune" not in path.parts:
        return path
    parts = path.parts
    moved = folder.joinpath(*parts[len(parts) - parts[::-1].index("tune") - 1 :])
    return moved if moved.exists() else path


def write_leaderboard(
    experiment_dir: str | Path,
    records: Iterable[TrialRecord],
    *,
    class_names: Sequence[str],
    title: str,
    baseline: Mapping[str, Any] | None = None,
) -> list[dict[str, Any]]:
    """Write leaderboard.csv and leaderboard.md; returns the rows (the baseline's included)."""
    import io

    folder = Path(experiment_dir)
    folder.mkdir(parents=True, exist_ok=True)
    rows = leaderboard_rows(records, class_names=class_names, baseline=baseline)
    for row in rows:  # relative: the folder can move, be copied or be mounted elsewhere
        row["checkpoint"] = relative_checkpoint(str(row.get("checkpoint") or ""), folder)
    buffer = io.StringIO()
    if rows:
        writer = csv.DictWriter(buffer, fieldnames=list(rows[0]), lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
    else:
        buffer.write("trial_id,status,model,loss,val_kaggle_dice,checkpoint,error\n")
    atomic_write(folder / "leaderboard.csv", buffer.getvalue())
    atomic_write(folder / "leaderboard.md", _markdown(rows, title, baseline))
    return rows
