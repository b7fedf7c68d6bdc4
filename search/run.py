"""`python -m search.run space=<unet|resunet|invresunet|deeplab|paper> [group=option] [key=value]`

Composes `search/conf/config.yaml`, validates every group, key and value (a bad one exits 2
with one line, before Ray starts), prepares the shards once, runs or resumes the Tune
experiment in `results/<experiment>/`, writes the leaderboard, promotes the best checkpoints
(`promote=false` skips it) and writes `report.html` (`report=false` skips it).
"""

from __future__ import annotations

import math
import os
import re
import shlex
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from data.config import (
    ConfigError,
    apply_tensorflow_env,
    offer_help,
    require,
    run_cli,
)
from search.records import (
    EXPERIMENT_FILE,
    METRIC,
    Experiment,
    RecordError,
    read_experiment,
    write_experiment,
)
from search.sweep.config import check_resume, experiment_name, resolved_config, validate
from search.sweep.runner import SearchPlan
from search.sweep.spaces import grid_points

__all__ = ["main", "make_plan", "plan_search"]


def make_plan(cfg: Mapping[str, Any], *, shards: str, class_names: Sequence[str]) -> SearchPlan:
    name = experiment_name(cfg)
    experiment_dir = (Path(cfg["results_dir"]) / name).resolve()
    threads = max(1, int(math.ceil(float(cfg["cluster"]["cpus_per_trial"]))))
    settings = {
        "shards": shards,
        "class_names": list(class_names),
        "train": dict(cfg["train"]),
        "seed": int(cfg["seed"]),
        "threads": threads,
    }
    return SearchPlan(
        experiment=name,
        experiment_dir=str(experiment_dir),
        shards=shards,
        class_names=tuple(class_names),
        settings=settings,
        points=grid_points(cfg["space"]),
        models=dict(cfg["space"]["models"]),
        searcher=dict(cfg["searcher"]),
        scheduler=dict(cfg["scheduler"]),
        cluster=dict(cfg["cluster"]),
        seed=int(cfg["seed"]),
        epochs=int(cfg["train"]["epochs"]),
        keep_checkpoints=int(cfg["keep_checkpoints"]),
        max_failures=int(cfg["max_failures"]),
        retry_errored=bool(cfg["retry_errored"]),
        console_interval_s=float(cfg["console_interval_s"]),
        reuse_actors=reuse_actors(cfg),
        prune_checkpoints=bool(cfg["prune_checkpoints"]),
        runtime_env={"env_vars": backend_env(cfg["train"]["backend"])},
    )


def backend_env(backend: str) -> dict[str, str]:
    """The trial workers' environment for a Keras backend, set before they import Keras.

    Under JAX, each trial allocates GPU memory as it needs it (XLA_PYTHON_CLIENT_PREALLOCATE
    off) rather than 75% of the card up front, so fractional-GPU trials can share one.
    """
    env = {"KERAS_BACKEND": backend}
    if backend == "jax":
        env["XLA_PYTHON_CLIENT_PREALLOCATE"] = "false"
    return env


def reuse_actors(cfg: Mapping[str, Any]) -> bool:
    """`reuse_actors=auto`: reuse a finished trial's worker unless ASHA stops trials early.

    A trial ends its function only at an epoch's end; one that ASHA stops is still training
    its next epoch, and Ray's reuse waits 2 s for it before failing the trial it was meant for.
    A fresh worker costs a TensorFlow start-up (seconds) against an epoch of minutes.
    """
    if cfg["reuse_actors"] == "auto":
        return cfg["scheduler"]["name"] != "asha"
    return bool(cfg["reuse_actors"])


def prepare_shards(cfg: Mapping[str, Any], experiment_dir: Path) -> tuple[str, Any]:
    """The shards URI and its manifest, prepared now if missing or stale (a no-op otherwise)."""
    from data.prepare import prepare

    uri = shards_uri(cfg["shards"]) if cfg["shards"] else str(experiment_dir / "shards")
    started = time.perf_counter()
    try:
        # A folder of other shards (another dataset, config or input) is refused, untouched.
        manifest = prepare(cfg["dataset"], out=uri, overwrite=bool(cfg["overwrite"]))
    except (ValueError, OSError) as exc:
        raise ConfigError(
            f"preparing shards of dataset={cfg['dataset']['name']} at {uri}: {exc}"
        ) from None
    print(f"[search] shards ready at {uri} ({time.perf_counter() - started:.1f} s)", flush=True)
    for split in ("train", "val"):
        rows = manifest.splits[split].rows if split in manifest.splits else 0
        require(rows > 0, f"{uri}: the {split} split is empty; the dataset is too small")
    verify_search_shards(manifest, experiment_dir)
    check_batching(manifest, cfg["train"])
    return uri, manifest


def shards_uri(shards: str) -> str:
    """`shards=` as the trials must see it: trials run in their own folders (and on other
    nodes), so a local path is made absolute."""
    return shards if "://" in shards else str(Path(shards).expanduser().resolve())


def dataset_of_shards(argv: Sequence[str]) -> tuple[list[str], dict[str, Any] | None]:
    """`shards=DIR` with no `dataset` on the command line searches what DIR holds.

    Returns argv with `dataset=<group>` added (so the dataset's training defaults are the ones
    composed) and the manifest's dataset config, or argv unchanged and None when a dataset is
    given, no shards are, or DIR has no manifest yet (then it is prepared as asked)."""
    from data.shards import ManifestMissing, ShardError, read_manifest

    given = [a.split("=", 1)[1] for a in argv if a.startswith("shards=")]
    if not given or not given[-1] or given[-1] == "null":
        return list(argv), None
    if any(a.lstrip("+~").startswith(("dataset=", "dataset.")) for a in argv):
        return list(argv), None
    try:
        manifest = read_manifest(shards_uri(given[-1]))
    except ManifestMissing:
        return list(argv), None
    except ShardError as exc:
        raise ConfigError(f"shards={given[-1]}: {exc}") from None
    held = dict(manifest.dataset)
    groups = dataset_groups()
    group = next((g for g in (held.get("name"), held.get("source")) if g in groups), None)
    require(
        group is not None,
        f"shards={given[-1]} holds dataset {held.get('name')!r} (source {held.get('source')!r}), "
        f"which is no dataset group ({', '.join(groups)}): give dataset=GROUP and its keys",
    )
    return [f"dataset={group}", *argv], held


def dataset_groups() -> list[str]:
    from importlib import resources

    folder = resources.files("data.conf") / "dataset"
    return sorted(
        p.name.removesuffix(".yaml") for p in folder.iterdir() if p.name.endswith(".yaml")
    )


def check_batching(manifest: Any, train: Mapping[str, Any]) -> None:
    """The trials' train and val batching checked once on the driver: a crop larger than an
    image or a mixed-size split batched whole would otherwise fail inside every trial."""
    from data.reader import ReaderError, check_options

    crop = tuple(train["crop"]) if train["crop"] else None
    try:
        check_options(manifest, "train", int(train["batch_size"]), crop, train["crop_mode"])
        check_options(manifest, "val", int(train["batch_size"]), None)
    except ReaderError as exc:
        raise ConfigError(f"{exc} (checked before any trial started)") from None


# Beside experiment.json: which shards (uri, size, mtime, sha256) were last checked whole.
SHARD_STAMP = "shards-verified.json"


def verify_search_shards(manifest: Any, experiment_dir: Path) -> None:
    """Every train and val shard checked against the manifest once, before Ray starts.

    A bad shard stops the driver with its name instead of failing inside every trial.
    """
    from data.shards import ShardError, verify_shards

    experiment_dir.mkdir(parents=True, exist_ok=True)
    try:
        report = verify_shards(manifest, ("train", "val"), stamp=experiment_dir / SHARD_STAMP)
    except ShardError as exc:
        raise ConfigError(f"{exc} (checked before any trial started)") from None
    print(
        f"[search] {report.shards} shards verified ({report.hashed} read and hashed, "
        f"{report.bytes_hashed / 1e6:.1f} MB; {report.stamped} unchanged since their last "
        f"check) in {report.seconds:.2f} s",
        flush=True,
    )


# The packages whose versions experiment.json records (those installed).
VERSIONED = ("ray", "keras", "tensorflow", "tensorflow-cpu", "jax", "optuna", "pyarrow", "numpy")


def package_versions() -> dict[str, str]:
    from importlib import metadata

    found = {"python": ".".join(str(n) for n in sys.version_info[:3])}
    for name in VERSIONED:
        try:
            found[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return found


PROJECT = Path(__file__).resolve().parents[1]


def git_commit(folder: Path = PROJECT) -> str | None:
    """The checkout's commit, with "-dirty" when tracked files differ; None outside git."""
    try:
        head = subprocess.run(
            ["git", "-C", str(folder), "rev-parse", "HEAD"],
            capture_output=True,
            text=True,
            timeout=10,
            check=True,
        ).stdout.strip()
        changed = subprocess.run(
            ["git", "-C", str(folder), "status", "--porcelain", "--untracked-files=no"],
            capture_output=True,
            text=True,
            timeout=10,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None
    return head + ("-dirty" if changed else "")


def _previous(experiment_dir: Path) -> Experiment | None:
    """The record an earlier sitting of this experiment left, if any."""
    if not (experiment_dir / EXPERIMENT_FILE).is_file():
        return None
    try:
        return read_experiment(experiment_dir)
    except RecordError:
        return None  # config.check_resume has already refused an unreadable record


def record_elapsed(experiment_dir: Path, seconds: float) -> None:
    """Add one sitting's wall seconds to experiment.json's elapsed_s (atomically)."""
    record = read_experiment(experiment_dir)
    record.elapsed_s = round(float(record.elapsed_s or 0.0) + seconds, 1)
    record.sittings = int(record.sittings or 0) + 1
    write_experiment(experiment_dir, record)


def record_experiment(
    plan: SearchPlan, cfg: Mapping[str, Any], manifest: Any, argv: Sequence[str]
) -> None:
    from data.stats import empty_prediction_score
    from models import resolve_precision

    experiment_dir = Path(plan.experiment_dir)
    previous = _previous(experiment_dir)
    record = Experiment(
        experiment=plan.experiment,
        shards=plan.shards,
        class_names=list(plan.class_names),
        dataset=cfg["dataset"].get("name"),
        image_shape=list(manifest.image_shape) if manifest.image_shape else None,
        input_shape=[None, None, 1],
        space=cfg["space"]["name"],
        models=sorted(plan.models),
        grid_points=len(plan.points),
        seed=plan.seed,
        metric=METRIC,
        # Predicting no defect on the very images the trials validate on: the floor to clear.
        baseline=empty_prediction_score(plan.shards, "val", limit=cfg["train"]["limit_val"]),
        # "auto" is resolved by each trial on its own machine (the leaderboard's precision
        # column); this is what it resolves to on the driver's machine.
        precision=resolve_precision(cfg["train"]["precision"]),
        command=shlex.join(["python", "-m", "search.run", *argv]),
        git_commit=git_commit(),
        versions=package_versions(),
        # Wall seconds of the search over every sitting that ended (SIGKILL loses its own).
        elapsed_s=float(previous.elapsed_s or 0.0) if previous else 0.0,
        sittings=int(previous.sittings or 0) if previous else 0,
        config=dict(cfg),
    )
    write_experiment(experiment_dir, record)  # a full disk leaves the old record, not half


def _final_step(experiment_dir: Path, what: str, command: str, step: Any) -> Any:
    """`step()`, or None and one line with the retry command if it fails: the leaderboard
    stands whatever promotion or the report does."""
    try:
        return step()
    except Exception as exc:
        print(
            f"[search] {what} failed ({type(exc).__name__}: {exc}); the leaderboard in "
            f"{experiment_dir} is complete. Retry: python -m {command} "
            f"experiment={experiment_dir.name}",
            file=sys.stderr,
        )
        return None


def _promote(experiment_dir: Path, plan: Any) -> bool:
    from search.promote import promote
    from search.sweep.runner import cluster_session

    def step() -> Path:
        with cluster_session(plan) as share:  # prediction on the cluster's workers, if any
            promote(experiment_dir, **share)
        return experiment_dir / "final"

    final = _final_step(experiment_dir, "promotion", "search.promote", step)
    if final is not None:
        print(f"[search] promoted: {final}", flush=True)
    return final is not None


def _report(experiment_dir: Path) -> bool:
    """report.html from what the search (and promotion) wrote: the page docs/promotion.md describes."""
    from search.report.page import write_report

    out = _final_step(
        experiment_dir, "the report", "search.report", lambda: write_report(experiment_dir)
    )
    if out is not None:
        print(f"[search] report: {out}", flush=True)
    return out is not None


def plan_search(cfg: Mapping[str, Any], experiment_dir: Path) -> tuple[SearchPlan, Any]:
    """The validated config's search plan, its shards prepared (or verified) first; also the
    shards' manifest. `main` runs it under the experiment's lock; `search.bench.trial` too."""
    uri, manifest = prepare_shards(cfg, experiment_dir)
    return make_plan(cfg, shards=uri, class_names=manifest.class_names), manifest


def main(argv: Sequence[str]) -> int:
    # Validation imports the models (and so TensorFlow): its environment comes first.
    apply_tensorflow_env()
    offer_help("search.conf", "config", argv, __doc__ or "")
    composed_argv, held = dataset_of_shards(argv)
    cfg = resolved_config(composed_argv)
    if held is not None:
        cfg["dataset"] = held
        print(
            f"[search] shards={cfg['shards']} holds dataset={held.get('name')} (its manifest "
            "says so): searching it",
            flush=True,
        )
    validate(cfg)
    check_cluster_reachable(cfg["cluster"])  # before anything is written or prepared
    name = experiment_name(cfg)
    experiment_dir = (Path(cfg["results_dir"]) / name).resolve()
    from search.lock import ExperimentLock

    with ExperimentLock(
        experiment_dir, command="search.run", stale_after_s=float(cfg["lock_stale_s"])
    ):
        return _run(cfg, experiment_dir, argv)


def _reachable(host: str, port: int, timeout_s: float = 3.0) -> bool:
    import socket

    try:
        with socket.create_connection((host, port), timeout=timeout_s):
            return True
    except OSError:
        return False


def check_cluster_reachable(cluster: Mapping[str, Any]) -> None:
    """cluster=address with no Ray to join: one line with the way out, before any work.

    `auto` finds a cluster as Ray does: RAY_ADDRESS (set under `ray job submit`), else the
    address file `ray start --head` leaves in Ray's temp folder on this machine.
    """
    address = cluster.get("address")
    if not address:
        return
    hint = "start one with `ray start --head` and rerun, or run here with cluster=local"
    if address == "auto":
        address = os.environ.get("RAY_ADDRESS")
        if not address:
            temp = Path(os.environ.get("RAY_TMPDIR", "/tmp")) / "ray" / "ray_current_cluster"
            require(
                temp.is_file(),
                "cluster.address=auto: no Ray cluster to join (RAY_ADDRESS is unset and no "
                f"`ray start` address in {temp}); {hint}",
            )
            address = temp.read_text().strip()
    target = re.sub(r"^(ray|https?)://", "", str(address)).rstrip("/")
    host, _, port = target.rpartition(":")
    require(
        host and port.isdigit() and _reachable(host, int(port)),
        f"cluster.address: nothing answers at {address} (no Ray cluster to join); {hint}",
    )


def _run(cfg: Mapping[str, Any], experiment_dir: Path, argv: Sequence[str]) -> int:
    check_resume(cfg, experiment_dir)
    started = time.perf_counter()
    plan, manifest = plan_search(cfg, experiment_dir)
    record_experiment(plan, cfg, manifest, argv)

    from search.sweep.runner import run_search

    print(f"[search] {plan.total_trials} trial(s) -> {experiment_dir}", flush=True)
    searching = time.perf_counter()
    try:
        outcome = run_search(plan)
    finally:  # an interrupted sitting counts too: the next one resumes it
        record_elapsed(experiment_dir, time.perf_counter() - searching)
    board = experiment_dir / "leaderboard.md"
    counts = ", ".join(f"{n} {s}" for s, n in sorted(outcome.statuses.items()))
    print(f"[search] {counts} in {time.perf_counter() - started:.0f} s; leaderboard: {board}")
    if outcome.interrupted:
        print("[search] interrupted: rerun the same command to resume", file=sys.stderr)
        return 130
    if cfg["promote"] and not _promote(experiment_dir, plan):
        return 1
    if cfg["report"] and not _report(experiment_dir):
        return 1
    print(f"[search] {disk_footprint(experiment_dir)}", flush=True)
    return 0


def _bytes_under(folder: Path) -> int:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file() and not p.is_symlink())


def disk_footprint(experiment_dir: Path) -> str:
    """What the experiment's folder holds on disk, in all and by part."""
    parts = {name: experiment_dir / name for name in ("tune", "final", "shards")}
    sizes = {name: _bytes_under(path) for name, path in parts.items() if path.is_dir()}
    total = _bytes_under(experiment_dir)
    listed = ", ".join(f"{name}/ {size / 2**20:.1f} MiB" for name, size in sizes.items())
    return f"{experiment_dir} holds {total / 2**20:.1f} MiB on disk ({listed})"


if __name__ == "__main__":
    run_cli(main)
