"""Search spaces: the YAML grids of `search/conf/space` as grid points, Tune and Optuna spaces.

A *point* is one trial's choice: `{"model": <architecture>, <hyperparameter>: value, ...}`.
Its keys are the architecture's hyperparameters (`models.hparam_spec`) plus the training keys
`loss`, `learning_rate` and `epochs` (a model's own budget, at most train.epochs). Everything is validated here, before Ray starts.
"""

from __future__ import annotations

import copy
import itertools
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from data.config import ConfigError, require

__all__ = [
    "TRAINING_KEYS",
    "apply_model_defaults",
    "RANGE_KINDS",
    "OptunaSpace",
    "grid_points",
    "model_hparams",
    "trial_share",
    "to_container",
    "validate_space",
]

# Searched like hyperparameters, but consumed by the optimiser and loss, not by build_model.
TRAINING_KEYS = ("loss", "learning_rate", "epochs")
RANGE_KINDS = ("choice", "uniform", "loguniform", "int")
SPACE_KEYS = ("name", "models")
HPARAM_PARTS = ("grid", "fixed", "ranges")
# `resources`: this model's own share of a node, {cpus, gpus, by_filters: {F: {cpus, gpus}}}.
MODEL_KEYS = (*HPARAM_PARTS, "resources")
RESOURCE_KEYS = ("cpus", "gpus", "by_filters")


def to_container(value: Any) -> Any:
    """An OmegaConf node (or anything else) as plain Python containers."""
    from omegaconf import DictConfig, ListConfig, OmegaConf

    if isinstance(value, DictConfig | ListConfig):
        return OmegaConf.to_container(value, resolve=True)
    return value


def model_hparams(point: Mapping[str, Any]) -> dict[str, Any]:
    """The part of a point that goes to `models.build_model`."""
    return {k: v for k, v in point.items() if k != "model" and k not in TRAINING_KEYS}


def apply_model_defaults(space: Mapping[str, Any], defaults: Mapping[str, Any]) -> dict[str, Any]:
    """The space with `defaults` (train.model_defaults) in each model's `fixed`.

    A default reaches every model of the space that takes the key and whose grid, fixed and
    ranges do not set it: a dataset's training file can size the models to its images (the
    synthetic set's 64x64 images take depth 2) without a space knowing the dataset. A key that
    only other architectures take is left out for this space (`space=deeplab` on the synthetic
    set has no depth); a key no architecture takes (a typo) is an error.
    """
    import models

    space = copy.deepcopy(to_container(space))
    require(
        isinstance(defaults, dict),
        f"train.model_defaults={defaults!r}: expected a mapping of hyperparameter -> value",
    )
    entries = space.get("models")
    if not defaults or not isinstance(entries, dict):
        return space
    for model, entry in entries.items():
        if model not in models.model_names() or not isinstance(entry, dict):
            continue  # validate_space names it
        spec = models.hparam_spec(model)
        chosen = {k for part in HPARAM_PARTS for k in (entry.get(part) or {})}
        fixed = dict(entry.get("fixed") or {})
        for key, value in defaults.items():
            if key in spec and key not in chosen:
                fixed[key] = value
        entry["fixed"] = fixed
    known = {key for model in models.model_names() for key in models.hparam_spec(model)}
    unknown = sorted(set(defaults) - known)
    require(
        not unknown,
        f"train.model_defaults: {', '.join(unknown)} is a hyperparameter of no architecture "
        f"({', '.join(models.model_names())}); see python -m search.run --help",
    )
    return space


def validate_space(space: Mapping[str, Any], *, train: Mapping[str, Any]) -> None:
    """ConfigError naming `space.models.<model>.<part>.<key>` for anything unusable."""
    space = to_container(space)
    unknown = sorted(set(space) - set(SPACE_KEYS))
    require(not unknown, f"space: unknown key(s) {unknown}; valid keys: {', '.join(SPACE_KEYS)}")
    entries = space.get("models")
    require(
        isinstance(entries, dict) and bool(entries),
        f"space.models={entries!r}: expected a mapping of architecture name -> grid",
    )
    import models

    names = models.model_names()
    for model, entry in entries.items():
        where = f"space.models.{model}"
        require(model in names, f"{where}: unknown architecture; valid: {', '.join(names)}")
        require(isinstance(entry, dict), f"{where}: expected a mapping with {MODEL_KEYS}")
        extra = sorted(set(entry) - set(MODEL_KEYS))
        require(not extra, f"{where}: unknown key(s) {extra}; valid keys: {', '.join(MODEL_KEYS)}")
        _validate_entry(model, entry, where, train)


def _validate_entry(model: str, entry: Mapping[str, Any], where: str, train: Mapping) -> None:
    grid = entry.get("grid") or {}
    fixed = entry.get("fixed") or {}
    ranges = entry.get("ranges") or {}
    for part, value in (("grid", grid), ("fixed", fixed), ("ranges", ranges)):
        require(isinstance(value, dict), f"{where}.{part}: expected a mapping, got {value!r}")
    for key, values in grid.items():
        require(
            isinstance(values, list) and bool(values),
            f"{where}.grid.{key}={values!r}: expected a non-empty list of values",
        )
        for value in values:
            _check_value(model, key, value, f"{where}.grid.{key}", train)
    for key, value in fixed.items():
        require(key not in grid, f"{where}.fixed.{key}: also in grid; keep it in one place")
        _check_value(model, key, value, f"{where}.fixed.{key}", train)
    for key, spec in ranges.items():
        _check_range(model, key, spec, f"{where}.ranges.{key}", train)
    for point in _points_of(model, entry):
        _check_point(model, point, where)
    if entry.get("resources") is not None:
        _check_resources(model, entry["resources"], f"{where}.resources")


def _check_share(share: Any, where: str) -> None:
    require(isinstance(share, dict), f"{where}={share!r}: expected a mapping with cpus, gpus")
    extra = sorted(set(share) - {"cpus", "gpus"})
    require(not extra, f"{where}: unknown key(s) {extra}; valid keys: cpus, gpus")
    cpus, gpus = share.get("cpus"), share.get("gpus")
    if cpus is not None:
        require(
            isinstance(cpus, int | float) and not isinstance(cpus, bool) and cpus > 0,
            f"{where}.cpus={cpus!r}: expected a number > 0",
        )
    if gpus is not None:
        require(
            isinstance(gpus, int | float)
            and not isinstance(gpus, bool)
            and (0 <= gpus <= 1 or float(gpus).is_integer()),
            f"{where}.gpus={gpus!r}: expected 0, a fraction in (0, 1] or a whole number",
        )


def _check_resources(model: str, resources: Any, where: str) -> None:
    import models

    require(isinstance(resources, dict), f"{where}={resources!r}: expected a mapping")
    extra = sorted(set(resources) - set(RESOURCE_KEYS))
    require(not extra, f"{where}: unknown key(s) {extra}; valid keys: {', '.join(RESOURCE_KEYS)}")
    _check_share({k: v for k, v in resources.items() if k != "by_filters"}, where)
    by_filters = resources.get("by_filters") or {}
    require(
        isinstance(by_filters, dict), f"{where}.by_filters: expected {{filters: {{gpus: ...}}}}"
    )
    if by_filters:
        require(
            "filters" in models.hparam_spec(model),
            f"{where}.by_filters: {model} has no filters hyperparameter",
        )
    for filters, share in by_filters.items():
        require(str(filters).isdigit(), f"{where}.by_filters.{filters}: expected a filters value")
        _check_share(share, f"{where}.by_filters.{filters}")


def trial_share(
    point: Mapping[str, Any], models: Mapping[str, Any], *, cpus: float, gpus: float
) -> tuple[float, float]:
    """(CPUs, GPUs) for one trial: the cluster's per-trial share, overridden by its model's
    `resources`, overridden by that model's `resources.by_filters[<the point's filters>]`."""
    resources = (models.get(point.get("model"), {}) or {}).get("resources") or {}
    cpus = float(resources.get("cpus", cpus))
    gpus = float(resources.get("gpus", gpus))
    by_filters = {int(k): v for k, v in (resources.get("by_filters") or {}).items()}
    share = by_filters.get(int(point["filters"])) if "filters" in point else None
    if share:
        cpus = float(share.get("cpus", cpus))
        gpus = float(share.get("gpus", gpus))
    return cpus, gpus


def _check_value(model: str, key: str, value: Any, where: str, train: Mapping) -> None:
    import models
    from models.losses import LOSSES

    if key == "loss":
        require(value in LOSSES, f"{where}={value!r}: unknown loss; valid: {', '.join(LOSSES)}")
        return
    if key == "learning_rate":
        ok = isinstance(value, int | float) and not isinstance(value, bool) and value > 0
        require(ok and math.isfinite(value), f"{where}={value!r}: expected a positive number")
        return
    if key == "epochs":
        # train.epochs stays the longest budget: the scheduler's max_t and the resume check.
        ok = isinstance(value, int) and not isinstance(value, bool) and value >= 1
        require(
            ok and value <= int(train["epochs"]),
            f"{where}={value!r}: expected an integer in 1..train.epochs={train['epochs']}",
        )
        return
    spec = models.hparam_spec(model)
    valid = ", ".join(sorted(set(spec) | set(TRAINING_KEYS)))
    require(key in spec, f"{where}: unknown hyperparameter of {model}; valid: {valid}")
    if key == "precision":
        raise ConfigError(f"{where}: precision is not searched; set train.precision instead")
    try:
        spec[key].validate(value, model=model)
    except ValueError as exc:
        raise ConfigError(f"{where}: {exc}") from None


def _check_range(model: str, key: str, spec: Any, where: str, train: Mapping) -> None:
    kinds = ", ".join(RANGE_KINDS)
    require(
        isinstance(spec, dict) and len(spec) == 1 and next(iter(spec)) in RANGE_KINDS,
        f"{where}={spec!r}: expected one of {{choice: [...]}}, {{uniform: [lo, hi]}}, "
        f"{{loguniform: [lo, hi]}}, {{int: [lo, hi]}} (kinds: {kinds})",
    )
    kind, values = next(iter(spec.items()))
    require(isinstance(values, list) and bool(values), f"{where}.{kind}: expected a list")
    if kind != "choice":
        require(
            len(values) == 2 and values[0] < values[1],
            f"{where}.{kind}={values!r}: expected [low, high] with low < high",
        )
        if kind == "loguniform":
            require(values[0] > 0, f"{where}.loguniform={values!r}: low must be > 0")
        if kind == "int":
            require(
                all(isinstance(v, int) for v in values), f"{where}.int={values!r}: expected ints"
            )
    for value in values:
        _check_value(model, key, value, f"{where}.{kind}", train)


def _check_point(model: str, point: Mapping[str, Any], where: str) -> None:
    """Some limits only show on a whole point (e.g. a depth too deep for the filters)."""
    import models

    try:
        models.resolve_hparams(model, model_hparams(point))
    except ValueError as exc:
        raise ConfigError(f"{where}: grid point {dict(point)}: {exc}") from None


def _points_of(model: str, entry: Mapping[str, Any]) -> list[dict[str, Any]]:
    grid = entry.get("grid") or {}
    fixed = entry.get("fixed") or {}
    keys = list(grid)
    return [
        {"model": model, **fixed, **dict(zip(keys, combo, strict=True))}
        for combo in itertools.product(*(grid[k] for k in keys))
    ]


def grid_points(space: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Every grid point of every architecture in the space, in YAML order."""
    space = to_container(space)
    return [p for model, entry in space["models"].items() for p in _points_of(model, entry)]


@dataclass(frozen=True)
class OptunaSpace:
    """A define-by-run space for OptunaSearch: the architecture first, then its hyperparameters.

    A class (not a closure) so that the searcher's saved state can be pickled on resume.
    Returns `{"point": {...}}`, the same shape a grid trial gets.
    """

    models: Mapping[str, Mapping[str, Any]]

    def __call__(self, trial: Any) -> dict[str, Any]:
        names = list(self.models)
        model = trial.suggest_categorical("model", names) if len(names) > 1 else names[0]
        entry = self.models[model]
        point: dict[str, Any] = {"model": model, **(entry.get("fixed") or {})}
        ranges = entry.get("ranges") or {}
        for key, values in (entry.get("grid") or {}).items():
            if key not in ranges:
                point[key] = trial.suggest_categorical(f"{model}.{key}", list(values))
        for key, spec in ranges.items():
            point[key] = _suggest(trial, f"{model}.{key}", spec)
        return {"point": point}


def _suggest(trial: Any, name: str, spec: Mapping[str, Sequence[Any]]) -> Any:
    kind, values = next(iter(spec.items()))
    if kind == "choice":
        return trial.suggest_categorical(name, list(values))
    if kind == "int":
        return trial.suggest_int(name, int(values[0]), int(values[1]))
    return trial.suggest_float(name, values[0], values[1], log=kind == "loguniform")
