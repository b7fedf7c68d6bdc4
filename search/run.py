"""`python -m search.run space=<unet|resunet|invresunet|deeplab|paper> [group=option] [key=value]`

Composes `search/conf/config.yaml`, validates every group, key and value (a bad one exits 2
with one line, before Ray starts), prepares the shards once, runs or resumes the Tune
experiment in `results/<experiment>/`, writes the leaderboard and promotes the best checkpoints.
"""

from __future__ import annotations

import json
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
    compose,
    offer_help,
    require,
    run_cli,
)
from data.reader import CROP_MODES
from search.lock import HEARTBEAT_S
from search.records import (
    EXPERIMENT_FILE,
    METRIC,
    Experiment,
    RecordError,
    read_experiment,
    write_experiment,
)
from search.runner import SearchPlan
from search.spaces import apply_model_defaults, grid_points, to_container, validate_space

__all__ = [
    "main",
    "load_config",
    "make_plan",
    "experiment_name",
    "OPTIMIZERS",
    "LR_SCHEDULES",
    "CROP_MODES",
]

OPTIMIZERS = ("adam", "adamw", "sgd")
LR_SCHEDULES = ("constant", "cosine")
BACKENDS = ("tensorflow", "jax")
RESUME = ("auto", "never")
# Settings whose change makes a different experiment; the rest (console, promote, cluster
# sizing) may change between a run and its resume.
IDENTITY_KEYS = ("space", "dataset", "train", "searcher", "scheduler", "seed", "shards")


def load_config(argv: Sequence[str]) -> Any:
    """The composed config; a bad group/key becomes a one-line ConfigError."""
    try:
        return compose("search.conf", "config", argv)
    except ConfigError as exc:
        if str(exc).startswith("train="):
            dataset = str(exc).split("=", 1)[1].split(":", 1)[0]
            raise ConfigError(
                f"dataset={dataset} has no training defaults: add search/conf/train/"
                f"{dataset}.yaml (see search/conf/train/severstal.yaml for the keys)"
            ) from None
        raise


def resolved_config(argv: Sequence[str]) -> dict[str, Any]:
    """The composed config as plain containers, train.model_defaults applied to the space."""
    cfg = to_container(load_config(argv))
    require(
        "model_defaults" in cfg["train"],
        "train.model_defaults is missing from the training defaults: add `model_defaults: {}` "
        "(see search/conf/train/severstal.yaml)",
    )
    cfg["space"] = apply_model_defaults(cfg["space"], cfg["train"]["model_defaults"])
    return cfg


def experiment_name(cfg: Mapping[str, Any]) -> str:
    """Given, or `<space>-<dataset>-<searcher>-<scheduler>`: the same command, the same folder."""
    if cfg.get("experiment"):
        name = str(cfg["experiment"])
        require(
            re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]*", name) is not None,
            f"experiment={name!r}: use letters, digits, '.', '_' or '-' (it names a folder)",
        )
        return name
    return "-".join(
        str(x)
        for x in (
            cfg["space"]["name"],
            cfg["dataset"]["name"],
            cfg["searcher"]["name"],
            cfg["scheduler"]["name"],
        )
    )


def _positive_int(value: Any, key: str, *, minimum: int = 1) -> int:
    ok = isinstance(value, int) and not isinstance(value, bool) and value >= minimum
    require(ok, f"{key}={value!r}: expected an integer >= {minimum}")
    return int(value)


def _optional_int(value: Any, key: str) -> None:
    if value is not None:
        _positive_int(value, key)


def validate_train(train: Mapping[str, Any]) -> None:
    from models import PRECISION_CHOICES

    _positive_int(train["epochs"], "train.epochs")
    _positive_int(train["batch_size"], "train.batch_size")
    rate = train["learning_rate"]
    require(
        isinstance(rate, int | float) and not isinstance(rate, bool) and 0 < rate < math.inf,
        f"train.learning_rate={rate!r}: expected a positive number",
    )
    require(
        train["optimizer"] in OPTIMIZERS,
        f"train.optimizer={train['optimizer']!r}: expected one of {', '.join(OPTIMIZERS)}",
    )
    require(
        train["backend"] in BACKENDS,
        f"train.backend={train['backend']!r}: expected one of {', '.join(BACKENDS)}",
    )
    require(
        train["lr_schedule"] in LR_SCHEDULES,
        f"train.lr_schedule={train['lr_schedule']!r}: expected one of {', '.join(LR_SCHEDULES)}",
    )
    crop = train["crop"]
    require(
        crop is None
        or (
            isinstance(crop, list)
            and len(crop) == 2
            and all(isinstance(c, int) and not isinstance(c, bool) and c > 0 for c in crop)
        ),
        f"train.crop={crop!r}: expected null or [height, width] with positive integers",
    )
    require(
        train["crop_mode"] in CROP_MODES,
        f"train.crop_mode={train['crop_mode']!r}: expected one of {', '.join(CROP_MODES)}",
    )
    require(isinstance(train["flip"], bool), f"train.flip={train['flip']!r}: expected true/false")
    _optional_int(train["limit_train"], "train.limit_train")
    _optional_int(train["limit_val"], "train.limit_val")
    require(
        train["precision"] in PRECISION_CHOICES,
        f"train.precision={train['precision']!r}: expected one of {', '.join(PRECISION_CHOICES)}",
    )


def validate_cluster(cluster: Mapping[str, Any]) -> None:
    address = cluster["address"]
    require(
        address is None
        or address == "auto"
        or (isinstance(address, str) and re.fullmatch(r"(ray://)?[\w.-]+:\d+", address)),
        f"cluster.address={address!r}: expected null (start a local Ray), auto, host:port "
        "or ray://host:port",
    )
    cpus, gpus = cluster["cpus_per_trial"], cluster["gpus_per_trial"]
    require(
        isinstance(cpus, int | float) and not isinstance(cpus, bool) and cpus > 0,
        f"cluster.cpus_per_trial={cpus!r}: expected a number > 0",
    )
    require(
        isinstance(gpus, int | float)
        and not isinstance(gpus, bool)
        and gpus >= 0
        and (gpus <= 1 or float(gpus).is_integer()),
        f"cluster.gpus_per_trial={gpus!r}: expected 0, a fraction in (0, 1] (0.25 = four "
        "trials per GPU) or a whole number of GPUs",
    )
    _optional_int(cluster["max_concurrent_trials"], "cluster.max_concurrent_trials")
    for key in ("num_cpus", "num_gpus"):
        if cluster[key] is not None:
            _positive_int(cluster[key], f"cluster.{key}", minimum=0)


def validate_search(cfg: Mapping[str, Any]) -> None:
    searcher, scheduler = cfg["searcher"], cfg["scheduler"]
    _positive_int(searcher["num_samples"], "searcher.num_samples")
    if searcher["name"] == "optuna":
        storage = searcher["storage"]
        require(
            storage is None or (isinstance(storage, str) and "://" in storage),
            f"searcher.storage={storage!r}: expected null or a database URL such as "
            "sqlite:///results/optuna.db",
        )
    if scheduler["name"] == "asha":
        grace = _positive_int(scheduler["grace_period"], "scheduler.grace_period")
        require(
            grace <= cfg["train"]["epochs"],
            f"scheduler.grace_period={grace}: must be <= train.epochs={cfg['train']['epochs']}",
        )
        factor = scheduler["reduction_factor"]
        require(
            isinstance(factor, int | float) and not isinstance(factor, bool) and factor > 1,
            f"scheduler.reduction_factor={factor!r}: expected a number > 1",
        )
        _positive_int(scheduler["brackets"], "scheduler.brackets")


def validate_top(cfg: Mapping[str, Any]) -> None:
    require(cfg["resume"] in RESUME, f"resume={cfg['resume']!r}: expected one of auto, never")
    _positive_int(cfg["seed"], "seed", minimum=0)
    _positive_int(cfg["keep_checkpoints"], "keep_checkpoints")
    _positive_int(cfg["max_failures"], "max_failures", minimum=0)
    for key in ("promote", "retry_errored", "prune_checkpoints"):
        require(isinstance(cfg[key], bool), f"{key}={cfg[key]!r}: expected true or false")
    reuse = cfg["reuse_actors"]
    require(
        reuse in ("auto", True, False),
        f"reuse_actors={reuse!r}: expected auto, true or false",
    )
    require(
        not (reuse is True and cfg["scheduler"]["name"] == "asha"),
        "reuse_actors=true with scheduler=asha: a trial that ASHA stops is mid-epoch, Ray gives "
        "its worker 2 s (TUNE_FUNCTION_THREAD_TIMEOUT_S) to finish before reusing it and errors "
        "the next trial when it has not; use reuse_actors=auto (a fresh worker per trial)",
    )
    stale = cfg["lock_stale_s"]
    require(
        isinstance(stale, int | float) and not isinstance(stale, bool) and stale > HEARTBEAT_S,
        f"lock_stale_s={stale!r}: expected a number of seconds above the {HEARTBEAT_S:g} s "
        "heartbeat",
    )
    interval = cfg["console_interval_s"]
    require(
        isinstance(interval, int | float) and not isinstance(interval, bool) and interval >= 0,
        f"console_interval_s={interval!r}: expected a number of seconds >= 0",
    )
    require(
        isinstance(cfg["results_dir"], str) and bool(cfg["results_dir"]),
        f"results_dir={cfg['results_dir']!r}: expected a folder",
    )


def validate(cfg: Mapping[str, Any]) -> None:
    """Every value of the composed config; ConfigError on the first bad one."""
    validate_top(cfg)
    require(
        not cfg.get("smoke") or cfg["dataset"]["name"] == "synthetic",
        f"preset=smoke sizes the synthetic dataset (num_images, height, width), but "
        f"dataset={cfg['dataset']['name']}: drop preset=smoke and use train.limit_train=N "
        "train.limit_val=N for a small run on it",
    )
    validate_train(cfg["train"])
    validate_cluster(cfg["cluster"])
    validate_search(cfg)
    _check_shares_fit(cfg)
    if cfg["train"]["backend"] == "jax" and not cfg["cluster"].get("address"):
        import importlib.util

        require(
            importlib.util.find_spec("jax") is not None,
            "train.backend=jax: JAX is not installed here; pip install -e '.[jax]' "
            "(or '.[jax]' plus a CUDA jaxlib on GPU machines)",
        )
    validate_space(cfg["space"], train=cfg["train"])


def _check_shares_fit(cfg: Mapping[str, Any]) -> None:
    """On a local Ray of known size, a trial asking for more than it has would wait forever."""
    from search.spaces import trial_share

    cluster = cfg["cluster"]
    if cluster.get("address"):
        return  # a cluster's nodes are its own; Ray's autoscaler reports what cannot fit
    limits = {"cpus": cluster.get("num_cpus") or os.cpu_count(), "gpus": cluster.get("num_gpus")}
    models = cfg["space"]["models"]
    for point in grid_points(cfg["space"]):
        cpus, gpus = trial_share(
            point,
            models,
            cpus=float(cluster["cpus_per_trial"]),
            gpus=float(cluster["gpus_per_trial"]),
        )
        for name, asked in (("cpus", cpus), ("gpus", gpus)):
            have = limits[name]
            require(
                have is None or asked <= float(have),
                f"a {point['model']} trial ({_point_text(point)}) asks for {asked:g} {name} but "
                f"this local Ray has {have}: it would never start; lower its share "
                f"(space.models.{point['model']}.resources or cluster.{name}_per_trial)",
            )


def _point_text(point: Mapping[str, Any]) -> str:
    return " ".join(f"{k}={v}" for k, v in point.items() if k != "model")


def _identity(cfg: Mapping[str, Any]) -> dict[str, Any]:
    return {k: cfg[k] for k in IDENTITY_KEYS}


def _check_resume(cfg: Mapping[str, Any], experiment_dir: Path) -> None:
    """Refuse to resume an experiment whose search was configured differently."""
    tune_dir = experiment_dir / "tune"
    if cfg["resume"] == "never":  # a fresh start must not mix with an old experiment
        require(
            not tune_dir.exists(),
            f"resume=never but {tune_dir} exists: choose another experiment=NAME or remove it",
        )
    if not tune_dir.exists() or not (experiment_dir / EXPERIMENT_FILE).is_file():
        return
    try:
        saved = read_experiment(experiment_dir).config or {}
    except RecordError as exc:
        raise ConfigError(f"cannot resume: {exc}") from None
    for key, value in _identity(cfg).items():
        if key in saved and saved[key] != value:
            raise ConfigError(
                f"{key} differs from the experiment in {experiment_dir} "
                f"(was {json.dumps(saved[key])[:200]}): a resumed search must keep it; "
                "choose another experiment=NAME"
            )


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

    uri = cfg["shards"] or str(experiment_dir / "shards")
    if "://" not in uri:  # trials run in their own folders (and on other nodes): no relative paths
        uri = str(Path(uri).expanduser().resolve())
    started = time.perf_counter()
    try:
        manifest = prepare(cfg["dataset"], out=uri)
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
        return None  # _check_resume has already refused an unreadable record


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


def _promote(experiment_dir: Path, plan: Any) -> bool:
    from search.promote import promote
    from search.runner import cluster_session

    try:
        with cluster_session(plan) as share:  # prediction on the cluster's workers, if any
            promote(experiment_dir, **share)
    except Exception as exc:  # the leaderboard stands whatever promotion does
        print(
            f"[search] promotion failed ({type(exc).__name__}: {exc}); the leaderboard in "
            f"{experiment_dir} is complete. Retry: python -m search.promote "
            f"experiment={experiment_dir.name}",
            file=sys.stderr,
        )
        return False
    print(f"[search] promoted: {experiment_dir / 'final'}", flush=True)
    return True


def plan_search(cfg: Mapping[str, Any], experiment_dir: Path) -> tuple[SearchPlan, Any]:
    """The validated config's search plan, its shards prepared (or verified) first; also the
    shards' manifest. `main` runs it under the experiment's lock; `search.bench` too."""
    uri, manifest = prepare_shards(cfg, experiment_dir)
    return make_plan(cfg, shards=uri, class_names=manifest.class_names), manifest


def main(argv: Sequence[str]) -> int:
    # Validation imports the models (and so TensorFlow): keep its start-up chatter quiet.
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    offer_help("search.conf", "config", argv, __doc__ or "")
    cfg = resolved_config(argv)
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
    _check_resume(cfg, experiment_dir)
    started = time.perf_counter()
    plan, manifest = plan_search(cfg, experiment_dir)
    record_experiment(plan, cfg, manifest, argv)

    from search.runner import run_search

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
