"""The search's configuration: `search/conf/config.yaml` composed with the command line
(Hydra), and every group, key and value validated before anything starts, so that a bad one
exits 2 with one line (`python -m search.run` calls `resolved_config` then `validate`).
"""

from __future__ import annotations

import json
import math
import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, fields
from enum import StrEnum
from pathlib import Path
from typing import Any

from omegaconf import MISSING

from data.config import ConfigError, check_schema, compose, require
from data.reader import CROP_MODES
from search.lock import HEARTBEAT_S
from search.records import EXPERIMENT_FILE, RecordError, read_experiment
from search.sweep.spaces import apply_model_defaults, grid_points, to_container, validate_space

__all__ = [
    "CROP_MODES",
    "LR_SCHEDULES",
    "OPTIMIZERS",
    "check_resume",
    "experiment_name",
    "load_config",
    "resolved_config",
    "validate",
]

OPTIMIZERS = ("adam", "adamw", "sgd")
# models.PRECISION_CHOICES, spelled here so that reading a config imports no Keras (and no
# TensorFlow, whose start-up lines would come before a bad argument's one error line);
# tests/search/test_search_config.py holds the two equal.
PRECISION_CHOICES = ("auto", "float32", "mixed_float16", "mixed_bfloat16")
LR_SCHEDULES = ("constant", "cosine")
BACKENDS = ("tensorflow", "jax")
RESUME = ("auto", "never")
Optimizer = StrEnum("Optimizer", {name: name for name in OPTIMIZERS})
LRSchedule = StrEnum("LRSchedule", {name: name for name in LR_SCHEDULES})
Backend = StrEnum("Backend", {name: name for name in BACKENDS})
Resume = StrEnum("Resume", {name: name for name in RESUME})
CropMode = StrEnum("CropMode", {name: name for name in CROP_MODES})
Precision = StrEnum("Precision", {name: name for name in PRECISION_CHOICES})


@dataclass
class TrainSchema:
    """`train.*` (search/conf/train/<dataset>.yaml documents each key): types and choices.

    Every key is required, so a training file that forgets one fails by name; ranges that a
    type cannot say (epochs >= 1, a crop of two positive sides) are `validate_train`'s."""

    epochs: int = MISSING
    batch_size: int = MISSING
    learning_rate: float = MISSING
    lr_schedule: LRSchedule = MISSING
    optimizer: Optimizer = MISSING
    crop: list[int] | None = MISSING
    crop_mode: CropMode = MISSING
    flip: bool = MISSING
    limit_train: int | None = MISSING
    limit_val: int | None = MISSING
    precision: Precision = MISSING
    backend: Backend = MISSING
    model_defaults: dict[str, Any] = MISSING


@dataclass
class TopSchema:
    """The top-level keys of search/conf/config.yaml that are plain values (the groups and
    `reuse_actors`, which is auto, true or false, are checked by `validate`)."""

    experiment: str | None = MISSING
    results_dir: str = MISSING
    shards: str | None = MISSING
    overwrite: bool = MISSING
    seed: int = MISSING
    resume: Resume = MISSING
    retry_errored: bool = MISSING
    keep_checkpoints: int = MISSING
    prune_checkpoints: bool = MISSING
    max_failures: int = MISSING
    promote: bool = MISSING
    report: bool = MISSING
    lock_stale_s: float = MISSING
    console_interval_s: float = MISSING
    smoke: bool = MISSING


# Settings whose change makes a different experiment; the rest (console, promote, report, cluster
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
    cfg["train"] = check_schema(TrainSchema, cfg["train"], prefix="train.")
    top = {k: cfg[k] for k in (f.name for f in fields(TopSchema))}
    cfg.update(check_schema(TopSchema, top))
    # The ranges of train.* before the space's model defaults, which import the models (and
    # TensorFlow, whose start-up lines would come before a bad value's one error line).
    validate_train(cfg["train"])
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
    """The ranges of `train.*` (TrainSchema has checked the types and choices)."""
    _positive_int(train["epochs"], "train.epochs")
    _positive_int(train["batch_size"], "train.batch_size")
    rate = train["learning_rate"]
    require(0 < rate < math.inf, f"train.learning_rate={rate!r}: expected a positive number")
    crop = train["crop"]
    require(
        crop is None or (len(crop) == 2 and all(c > 0 for c in crop)),
        f"train.crop={crop!r}: expected null or [height, width] with positive integers",
    )
    _optional_int(train["limit_train"], "train.limit_train")
    _optional_int(train["limit_val"], "train.limit_val")


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
    _positive_int(cfg["seed"], "seed", minimum=0)
    _positive_int(cfg["keep_checkpoints"], "keep_checkpoints")
    _positive_int(cfg["max_failures"], "max_failures", minimum=0)
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
        stale > HEARTBEAT_S,
        f"lock_stale_s={stale!r}: expected a number of seconds above the {HEARTBEAT_S:g} s "
        "heartbeat",
    )
    interval = cfg["console_interval_s"]
    require(interval >= 0, f"console_interval_s={interval!r}: expected a number of seconds >= 0")
    require(bool(cfg["results_dir"]), f"results_dir={cfg['results_dir']!r}: expected a folder")


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
    from search.sweep.spaces import trial_share

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


def check_resume(cfg: Mapping[str, Any], experiment_dir: Path) -> None:
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
