"""Hyperparameter specs: defaults and allowed values, checked before any graph is built.

Search validates a whole config through `validate_hparams` before Ray starts, so a typo
fails in a second instead of inside a trial an hour later. The specs that several
architectures share are built here, so no architecture module imports another.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

from models.blocks import MCAD_DILATIONS

__all__ = [
    "HParam",
    "HParamError",
    "PRECISIONS",
    "UNET_FAMILY_HPARAMS",
    "mcad_hparam",
    "output_prior_hparam",
    "precision_hparam",
    "validate_hparams",
]

PRECISIONS = ("float32", "mixed_float16", "mixed_bfloat16")


class HParamError(ValueError):
    """An unknown hyperparameter, or a value outside what the architecture accepts."""


@dataclass(frozen=True)
class HParam:
    """One hyperparameter: its type, default, and either a set of choices or a numeric range.

    `low`/`high` bound numeric values; `low_open` makes the lower bound exclusive (alpha in (0, 1]).
    `paper` lists the values the seed paper searched, for spaces and documentation.
    """

    name: str
    kind: type
    default: Any
    doc: str
    choices: tuple[Any, ...] | None = None
    low: float | None = None
    high: float | None = None
    low_open: bool = False
    paper: tuple[Any, ...] = ()

    def allowed(self) -> str:
        """The allowed values in words, for error messages."""
        if self.choices is not None:
            return "one of " + ", ".join(repr(c) for c in self.choices)
        left = "(" if self.low_open else "["
        low = "-inf" if self.low is None else f"{self.low:g}"
        high = "inf" if self.high is None else f"{self.high:g}"
        return f"{self.kind.__name__} in {left}{low}, {high}]"

    def validate(self, value: Any, *, model: str = "") -> Any:
        """The value, coerced to `kind` where lossless; HParamError naming the model and key if not."""
        where = (
            f"{model}: hyperparameter {self.name!r}" if model else f"hyperparameter {self.name!r}"
        )
        coerced = self._coerce(value)
        if coerced is None:
            raise HParamError(
                f"{where} = {value!r} is not a {self.kind.__name__}; allowed: {self.allowed()}"
            )
        if self.choices is not None and coerced not in self.choices:
            raise HParamError(f"{where} = {value!r} is not allowed; allowed: {self.allowed()}")
        if self.kind in (int, float) and not self._in_range(coerced):
            raise HParamError(f"{where} = {value!r} is out of range; allowed: {self.allowed()}")
        return coerced

    def _coerce(self, value: Any) -> Any:
        # bool is an int subclass in Python; True as a filter count is always a mistake.
        # numbers.* also admits NumPy scalars, which samplers may hand over.
        if isinstance(value, bool):
            return value if self.kind is bool else None
        if self.kind is int:
            if isinstance(value, numbers.Integral):
                return int(value)
            if isinstance(value, numbers.Real) and float(value).is_integer():
                return int(value)
            return None
        if self.kind is float:
            if isinstance(value, numbers.Real) and math.isfinite(float(value)):
                return float(value)
            return None
        return value if isinstance(value, self.kind) else None

    def _in_range(self, value: float) -> bool:
        if self.low is not None and (value <= self.low if self.low_open else value < self.low):
            return False
        return not (self.high is not None and value > self.high)


def precision_hparam() -> HParam:
    """The `precision` option every architecture takes."""
    return HParam(
        "precision",
        str,
        "float32",
        "Keras dtype policy for the layers; logits stay float32 under mixed policies.",
        choices=PRECISIONS,
    )


def output_prior_hparam() -> HParam:
    """The `output_prior` option every architecture takes: the head's initial probability."""
    return HParam(
        "output_prior",
        float,
        0.01,
        "Probability every pixel and class starts at: the logits' bias starts at "
        "log(p / (1 - p)) (RetinaNet's prior for rare positives). 0.5 = a zero bias.",
        low=0.0,
        high=0.5,
        low_open=True,
    )


def _unet_family_hparams() -> Mapping[str, HParam]:
    specs = (
        HParam(
            "filters",
            int,
            8,
            "Width of the first stage, doubled at each stage.",
            low=1,
            high=256,
            paper=(8, 16, 32, 64),
        ),
        HParam(
            "depth",
            int,
            5,
            "Encoder stages before the bottleneck (the paper's code: 5).",
            low=1,
            high=7,
        ),
        HParam(
            "batch_norm",
            bool,
            False,
            "Batch norm after each conv of the plain conv blocks (the paper's U-Net had none).",
            choices=(False, True),
        ),
        output_prior_hparam(),
        precision_hparam(),
    )
    return MappingProxyType({hp.name: hp for hp in specs})


# What unet, resunet and invresunet all take; each adds its own activation (whose default
# and doc differ) and, for the MCAD bridge, `mcad_hparam()`.
UNET_FAMILY_HPARAMS: Mapping[str, HParam] = _unet_family_hparams()


def mcad_hparam() -> HParam:
    """The `mcad` variant of the U-Nets whose bridge is MCAD (resunet, invresunet)."""
    return HParam(
        "mcad",
        str,
        "basic",
        "MCAD variant: 'basic' = the paper's 6 layers (dilations 1,1,2,4,8,12); "
        "'original' = Yu & Koltun's 8-layer table.",
        choices=tuple(MCAD_DILATIONS),
    )


def validate_hparams(
    model: str, spec: Mapping[str, HParam], hparams: Mapping[str, Any]
) -> dict[str, Any]:
    """Every key of `spec`, with `hparams` validated over the defaults. Unknown keys fail listing the valid ones."""
    unknown = sorted(set(hparams) - set(spec))
    if unknown:
        raise HParamError(
            f"{model}: unknown hyperparameter(s) {', '.join(map(repr, unknown))}; "
            f"valid: {', '.join(sorted(spec))}"
        )
    values = {name: hp.default for name, hp in spec.items()}
    for name, value in hparams.items():
        values[name] = spec[name].validate(value, model=model)
    return values
