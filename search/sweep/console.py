"""Live view of a running search, and the leaderboard refresh, as one Tune callback.

Each trial end (or every `interval_s` seconds) prints one line with the trials running,
finished and errored and the best so far, and rewrites `leaderboard.csv|.md`.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from ray import tune

from search.records import ENDED, INPUT_BOUND_SHARE, METRIC, Status
from search.sweep.leaderboard import TrialRecord, read_baseline, write_leaderboard

__all__ = [
    "SearchProgress",
    "epoch_progress",
    "error_line",
    "format_duration",
    "status_line",
    "trial_record",
]


def error_line(error_file: str | Path | None) -> str:
    """The last line of a trial's error.txt: the exception and its message."""
    if not error_file or not Path(error_file).is_file():
        return ""
    lines = [line.strip() for line in Path(error_file).read_text().splitlines() if line.strip()]
    return lines[-1] if lines else ""


def trial_record(trial: Any, *, status: str | None = None) -> TrialRecord:
    """A leaderboard record of a Tune Trial object."""
    error = ""
    if (status or trial.status) == Status.ERROR:
        error = error_line(trial.error_file) or "error (see the trial's error.txt)"
    point = dict(trial.config.get("point", {}))
    # Show the learning rate a trial used even when the space does not search it.
    train = trial.config.get("settings", {}).get("train", {})
    point.setdefault("learning_rate", train.get("learning_rate", ""))
    return TrialRecord(
        trial_id=trial.trial_id,
        status=status or trial.status,
        point=point,
        path=trial.path,
        error=error,
        last_result=dict(trial.last_result or {}),
    )


def _point_label(point: Mapping[str, Any]) -> str:
    items = " ".join(f"{k}={v}" for k, v in point.items() if k != "model")
    return f"{point.get('model', '?')} {items}".strip()


def epoch_progress(trials: Sequence[Any]) -> tuple[int, int]:
    """(epochs done, epochs still planned) over the trials.

    A trial plans its own `epochs` (a space's per-model budget) or train.epochs; a finished,
    errored or early-stopped trial plans nothing more.
    """
    done = remaining = 0
    for trial in trials:
        epochs_done = int((trial.last_result or {}).get("training_iteration", 0) or 0)
        done += epochs_done
        if trial.status in ENDED:
            continue
        config = trial.config or {}
        planned = config.get("point", {}).get("epochs") or (
            config.get("settings", {}).get("train", {}).get("epochs", 0)
        )
        remaining += max(0, int(planned or 0) - epochs_done)
    return done, remaining


def format_duration(seconds: float) -> str:
    """'42s', '7m05s', '2h03m'."""
    seconds = max(0, int(round(seconds)))
    if seconds < 60:
        return f"{seconds}s"
    if seconds < 3600:
        return f"{seconds // 60}m{seconds % 60:02d}s"
    return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m"


def status_line(
    trials: Sequence[Any],
    *,
    total: int | None,
    ending: Any = None,
    ending_status: str = "",
    baseline: float | None = None,
    elapsed_s: float | None = None,
    eta_s: float | None = None,
) -> str:
    """'12:00:01 running 2 | ... | best 0.8123 (+0.2142 over predict-nothing 0.5981) unet ...'.

    `ending` is a trial Tune is finishing right now: it still shows as RUNNING in `trials`.
    `baseline` is the predict-nothing score on the same validation images.
    """
    counts = Counter(ending_status if t is ending else t.status for t in trials)
    best, best_point = None, None
    for trial in trials:
        score = (trial.last_result or {}).get(METRIC)
        metrics = getattr(trial.run_metadata, "metric_analysis", {}).get(METRIC, {})
        score = metrics.get("max", score)
        if isinstance(score, int | float) and (best is None or score > best):
            best, best_point = score, trial.config.get("point", {})
    done = counts.get(Status.TERMINATED, 0)
    of = f"/{total}" if total else ""
    text = (
        f"{time.strftime('%H:%M:%S')} running {counts.get('RUNNING', 0)} | "
        f"pending {counts.get('PENDING', 0)} | finished {done}{of} | "
        f"errored {counts.get('ERROR', 0)}"
    )
    if elapsed_s is not None:
        text += f" | elapsed {format_duration(elapsed_s)}"
        # An upper bound under ASHA, which may stop trials before their last epoch.
        text += f", ETA {format_duration(eta_s)}" if eta_s is not None else ", ETA ?"
    if best is not None:
        text += f" | best {METRIC} {best:.4f}"
        if baseline is not None:
            text += f" ({best - baseline:+.4f} over predict-nothing {baseline:.4f})"
        text += f" ({_point_label(best_point)})"
    elif baseline is not None:
        text += f" | predict-nothing {baseline:.4f}"
    text += _input_bound(trials)
    return text


def _input_bound(trials: Sequence[Any]) -> str:
    """' | input-bound: 3 of 4 trials wait >20% for input', from each trial's latest epoch;
    nothing while no trial waits that long (or none has measured it yet)."""
    shares = [
        share
        for t in trials
        if isinstance(share := (t.last_result or {}).get("input_wait_share"), int | float)
    ]
    bound = sum(share > INPUT_BOUND_SHARE for share in shares)
    if not bound:
        return ""
    return (
        f" | input-bound: {bound} of {len(shares)} trials wait "
        f">{INPUT_BOUND_SHARE:.0%} for input (give them more CPUs)"
    )


class SearchProgress(tune.Callback):
    """Prints a status line and refreshes the leaderboard as trials finish.

    Holds only plain values: Tune pickles it with the run config and restores it on resume.
    """

    def __init__(
        self,
        *,
        experiment_dir: str,
        class_names: Sequence[str],
        title: str,
        total: int | None,
        interval_s: float,
    ) -> None:
        self.experiment_dir = experiment_dir
        self.class_names = list(class_names)
        self.title = title
        self.total = total
        self.interval_s = float(interval_s)
        self._last_print = 0.0
        self._started: float | None = None
        self._epochs_at_start: int | None = None

    def setup(self, **info: Any) -> None:
        # Also on resume: the rate counts this session's epochs only.
        self._started, self._epochs_at_start = time.monotonic(), None

    def _timing(self, trials: Sequence[Any]) -> tuple[float | None, float | None]:
        """(elapsed seconds this session, estimated seconds left) from the epoch rate."""
        if self._started is None:
            return None, None
        done, remaining = epoch_progress(trials)
        if self._epochs_at_start is None:
            self._epochs_at_start = done
        elapsed = time.monotonic() - self._started
        finished = done - self._epochs_at_start
        if remaining == 0:
            return elapsed, 0.0
        if finished <= 0:
            return elapsed, None
        return elapsed, remaining * elapsed / finished

    def _baseline(self) -> dict[str, Any] | None:
        # Read from experiment.json, which search.run writes before every launch, rather than
        # pickled with this callback: a search restored by Tune gets the callback it started
        # with, perhaps from before baselines were recorded.
        return read_baseline(self.experiment_dir)

    def _refresh(self, trials: Sequence[Any], changed: Any = None, status: str = "") -> None:
        records = [
            trial_record(t, status=status if (changed is not None and t is changed) else None)
            for t in trials
        ]
        write_leaderboard(
            self.experiment_dir,
            records,
            class_names=self.class_names,
            title=self.title,
            baseline=self._baseline(),
        )

    def _print(
        self, trials: Sequence[Any], prefix: str = "", ending: Any = None, status: str = ""
    ) -> None:
        self._last_print = time.monotonic()
        baseline = self._baseline()
        elapsed, eta = self._timing(trials)
        line = status_line(
            trials,
            total=self.total,
            ending=ending,
            ending_status=status,
            baseline=None if baseline is None else float(baseline["kaggle_dice"]),
            elapsed_s=elapsed,
            eta_s=eta,
        )
        print(f"[search] {prefix}{line}", flush=True)

    def on_trial_result(self, iteration: int, trials: list, trial: Any, result: dict, **info):
        if self.interval_s and time.monotonic() - self._last_print >= self.interval_s:
            self._print(trials)

    def on_trial_complete(self, iteration: int, trials: list, trial: Any, **info):
        self._refresh(trials, trial, Status.TERMINATED)
        self._print(trials, f"done {trial.trial_id}: ", trial, Status.TERMINATED)

    def on_trial_error(self, iteration: int, trials: list, trial: Any, **info):
        self._refresh(trials, trial, Status.ERROR)
        self._print(trials, f"ERROR {trial.trial_id}: ", trial, Status.ERROR)

    def on_experiment_end(self, trials: list, **info):
        self._refresh(trials)
