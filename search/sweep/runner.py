"""Builds and runs the Tune experiment of a validated `SearchPlan`.

One function builds the `Tuner` (fresh or restored); `run_search` joins or starts Ray, runs
it, and writes the final leaderboard from Tune's saved experiment state.
"""

from __future__ import annotations

import contextlib
import functools
import os
import signal
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from data.config import tensorflow_env
from search.records import ENDED, METRIC, Status
from search.sweep.leaderboard import (
    read_baseline,
    repair_results,
    resolve_checkpoint,
    write_leaderboard,
)

__all__ = ["SearchPlan", "SearchOutcome", "build_tuner", "run_search", "trial_dirname"]

MODE = "max"


@dataclass(frozen=True)
class SearchPlan:
    """Everything the runner needs, as plain values (validated by search.run)."""

    experiment: str
    experiment_dir: str  # absolute
    shards: str
    class_names: tuple[str, ...]
    settings: Mapping[str, Any]  # handed to every trial: shards, class_names, train, seed, threads
    points: Sequence[Mapping[str, Any]]  # grid points (grid searcher)
    models: Mapping[str, Any]  # the space's models section (optuna searcher)
    searcher: Mapping[str, Any]
    scheduler: Mapping[str, Any]
    cluster: Mapping[str, Any]
    seed: int
    epochs: int
    keep_checkpoints: int
    max_failures: int
    retry_errored: bool
    console_interval_s: float
    reuse_actors: bool = True
    prune_checkpoints: bool = True
    runtime_env: Mapping[str, Any] = field(default_factory=dict)

    @property
    def tune_dir(self) -> Path:
        return Path(self.experiment_dir) / "tune"

    @property
    def total_trials(self) -> int:
        if self.searcher["name"] == "grid":
            return len(self.points) * int(self.searcher["num_samples"])
        return int(self.searcher["num_samples"])


@dataclass(frozen=True)
class SearchOutcome:
    rows: list[dict[str, Any]]
    interrupted: bool
    statuses: dict[str, int]


def trial_dirname(trial: Any) -> str:
    """`<model>_<trial id>`: short, readable, unique (a module function so it pickles)."""
    return f"{trial.config.get('point', {}).get('model', 'trial')}_{trial.trial_id}"


def trial_placement(
    config: Mapping[str, Any], *, models: Mapping[str, Any], cpus: float, gpus: float
) -> Any:
    """The placement of one trial: its model's (and filters value's) share of a node."""
    from ray.tune import PlacementGroupFactory

    from search.sweep.spaces import trial_share

    cpu, gpu = trial_share(config["point"], models, cpus=cpus, gpus=gpus)
    bundle = {"CPU": cpu, **({"GPU": gpu} if gpu > 0 else {})}
    return PlacementGroupFactory([bundle])


def _trainable(plan: SearchPlan) -> Any:
    from ray import tune

    from search.sweep.trainable import train_segmentation

    # Per trial, from its point: a space may give a model, or one filters value, its own
    # CPUs and GPU share (a whole card for filters 64 at full size, a quarter for filters 8).
    placement = functools.partial(
        trial_placement,
        models=dict(plan.models),
        cpus=float(plan.cluster["cpus_per_trial"]),
        gpus=float(plan.cluster["gpus_per_trial"]),
    )
    return tune.with_resources(train_segmentation, placement)


def _param_space(plan: SearchPlan) -> dict[str, Any]:
    from ray import tune

    space: dict[str, Any] = {"settings": dict(plan.settings)}
    if plan.searcher["name"] == "grid":
        space["point"] = tune.grid_search([dict(p) for p in plan.points])
    return space


def _search_alg(plan: SearchPlan) -> Any:
    if plan.searcher["name"] != "optuna":
        return None
    from ray.tune.search.optuna import OptunaSearch

    from search.sweep.spaces import OptunaSpace

    storage = None
    if plan.searcher.get("storage"):
        import optuna

        storage = optuna.storages.RDBStorage(str(plan.searcher["storage"]))
    return OptunaSearch(
        space=OptunaSpace(models=dict(plan.models)),
        # A define-by-run space ignores TuneConfig's metric/mode, so they are given here too.
        metric=METRIC,
        mode=MODE,
        seed=plan.seed,
        storage=storage,
        study_name=plan.searcher.get("study_name") or plan.experiment,
    )


def _scheduler(plan: SearchPlan) -> Any:
    if plan.scheduler["name"] != "asha":
        return None
    from ray.tune.schedulers import ASHAScheduler

    return ASHAScheduler(
        time_attr="training_iteration",
        max_t=plan.epochs,
        grace_period=int(plan.scheduler["grace_period"]),
        reduction_factor=float(plan.scheduler["reduction_factor"]),
        brackets=int(plan.scheduler["brackets"]),
    )


def build_tuner(plan: SearchPlan) -> Any:
    """A restored Tuner if this experiment was interrupted, else a fresh one."""
    from ray import tune

    from search.sweep.console import SearchProgress

    trainable = _trainable(plan)
    if tune.Tuner.can_restore(str(plan.tune_dir)):
        print(f"[search] resuming {plan.tune_dir} (finished trials are kept)", flush=True)
        return tune.Tuner.restore(
            str(plan.tune_dir),
            trainable=trainable,
            resume_unfinished=True,
            resume_errored=plan.retry_errored,
            param_space=_param_space(plan),
        )
    progress = SearchProgress(
        experiment_dir=plan.experiment_dir,
        class_names=plan.class_names,
        title=plan.experiment,
        total=plan.total_trials,
        interval_s=plan.console_interval_s,
    )
    return tune.Tuner(
        trainable,
        param_space=_param_space(plan),
        tune_config=tune.TuneConfig(
            metric=METRIC,
            mode=MODE,
            search_alg=_search_alg(plan),
            scheduler=_scheduler(plan),
            num_samples=int(plan.searcher["num_samples"]),
            max_concurrent_trials=plan.cluster.get("max_concurrent_trials"),
            trial_dirname_creator=trial_dirname,
            reuse_actors=plan.reuse_actors,
        ),
        run_config=tune.RunConfig(
            name="tune",
            storage_path=plan.experiment_dir,
            checkpoint_config=tune.CheckpointConfig(
                num_to_keep=plan.keep_checkpoints,
                checkpoint_score_attribute=METRIC,
                checkpoint_score_order=MODE,
            ),
            failure_config=tune.FailureConfig(max_failures=plan.max_failures),
            callbacks=[progress],
            verbose=0,
        ),
    )


def _init_ray(plan: SearchPlan) -> None:
    import ray

    env = {"env_vars": {**tensorflow_env(), **plan.runtime_env.get("env_vars", {})}}
    address = plan.cluster.get("address")
    if address:
        ray.init(address=str(address), runtime_env=env, log_to_driver=True)
        return
    # A local Ray is reachable only from this machine: the dashboard is off and what Ray
    # still serves over HTTP binds to 127.0.0.1.
    ray.init(
        num_cpus=plan.cluster.get("num_cpus"),
        num_gpus=plan.cluster.get("num_gpus"),
        include_dashboard=False,
        dashboard_host="127.0.0.1",
        runtime_env=env,
    )


@contextlib.contextmanager
def cluster_session(plan: SearchPlan) -> Iterator[dict[str, float]]:
    """Ray again after the search, for promotion's prediction tasks, when the search ran on a
    cluster (`cluster.address`): yields each task's share, the trials' default (`cpus`,
    `gpus`). Without a cluster it starts nothing and yields no share: prediction runs in the
    driver's process, as `python -m search.promote` does."""
    if not plan.cluster.get("address"):
        yield {}
        return
    import ray

    _init_ray(plan)
    try:
        yield {
            "cpus": float(plan.cluster["cpus_per_trial"]),
            "gpus": float(plan.cluster["gpus_per_trial"]),
        }
    finally:
        ray.shutdown()


def _sigterm_as_sigint() -> None:
    """Tune saves the experiment and stops cleanly on SIGINT; treat SIGTERM the same way."""
    if hasattr(signal, "SIGTERM"):
        signal.signal(signal.SIGTERM, lambda *_: os.kill(os.getpid(), signal.SIGINT))


def prune_checkpoints(rows: Sequence[Mapping[str, Any]], experiment_dir: str | Path) -> int:
    """Delete the non-best checkpoints of finished trials; returns how many went.

    Tune always keeps a trial's latest checkpoint besides the best ones (to resume it); a
    finished trial is never resumed, and a filters-64 U-Net checkpoint is ~1.4 GB.
    """
    import shutil

    removed = 0
    for row in rows:
        recorded = str(row.get("checkpoint") or "")
        if row.get("status") != Status.TERMINATED or not recorded:
            continue
        best = str(resolve_checkpoint(recorded, experiment_dir).resolve())
        for folder in Path(best).parent.glob("checkpoint_*"):
            if folder.is_dir() and str(folder.resolve()) != best:
                shutil.rmtree(folder)
                removed += 1
    return removed


def _epoch_ranges(epochs: Sequence[int]) -> str:
    """[1, 2, 3, 7] -> '1-3, 7'."""
    spans: list[list[int]] = []
    for epoch in sorted(epochs):
        if spans and epoch == spans[-1][1] + 1:
            spans[-1][1] = epoch
        else:
            spans.append([epoch, epoch])
    return ", ".join(f"{a}-{b}" if b > a else str(a) for a, b in spans)


def final_leaderboard(plan: SearchPlan) -> SearchOutcome:
    """The leaderboard from Tune's saved experiment state (all trials, any session)."""
    from ray import tune

    from search.sweep.console import trial_record

    analysis = tune.ExperimentAnalysis(str(plan.tune_dir))
    # Tune has stopped syncing: mend any result.json a killed driver left truncated.
    for trial in analysis.trials:
        restored = repair_results(trial.path)
        if restored:
            print(
                f"[search] {trial.trial_id}: result.json had lost epoch(s) "
                f"{_epoch_ranges(restored)}; restored from the trial's newest checkpoint",
                flush=True,
            )
    records = [trial_record(t) for t in analysis.trials]
    rows = write_leaderboard(
        plan.experiment_dir,
        records,
        class_names=plan.class_names,
        title=plan.experiment,
        baseline=read_baseline(plan.experiment_dir),
    )
    if plan.prune_checkpoints:
        prune_checkpoints(rows, plan.experiment_dir)
    statuses: dict[str, int] = {}
    for record in records:
        statuses[record.status] = statuses.get(record.status, 0) + 1
    interrupted = any(r.status not in ENDED for r in records)
    return SearchOutcome(rows=rows, interrupted=interrupted, statuses=statuses)


def run_search(plan: SearchPlan) -> SearchOutcome:
    """Join/start Ray, run (or resume) the experiment, write the leaderboard, stop Ray."""
    import ray

    # Tune warns when per-epoch checkpoints force frequent state snapshots: that is intended.
    os.environ.setdefault("TUNE_WARN_EXCESSIVE_EXPERIMENT_CHECKPOINT_SYNC_THRESHOLD_S", "0")
    # Snapshot the experiment state at every step, not every 10 s or more ("auto"): Tune
    # deletes a trial's older checkpoints (keep_checkpoints) as new ones land, and a driver
    # killed between that and the next snapshot leaves a state whose latest checkpoint is
    # gone, so the resumed trial cannot restore (search.bench.chaos found it with 0.2 s epochs).
    os.environ.setdefault("TUNE_GLOBAL_CHECKPOINT_S", "0")
    _init_ray(plan)
    _sigterm_as_sigint()  # after ray.init, which installs its own SIGTERM handler
    try:
        tuner = build_tuner(plan)
        tuner.fit()
        return final_leaderboard(plan)
    finally:
        ray.shutdown()
