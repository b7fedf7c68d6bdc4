"""Print every architecture's parameter count as a markdown table (the table in docs/models.md).

    python -m models.params [num_classes=4]

Counts do not depend on H x W, so the models are built with (None, None, 1) inputs.
"""

from __future__ import annotations

import gc
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from data.config import compose_schema, require, run_cli

__all__ = ["PARAM_TABLE_CONFIGS", "count_params", "param_rows", "param_table"]

# (model, hyperparameters) rows: the paper's grid values.
PARAM_TABLE_CONFIGS: tuple[tuple[str, dict[str, Any]], ...] = (
    *(("unet", {"filters": f}) for f in (8, 16, 32, 64)),
    *(("resunet", {"filters": f}) for f in (8, 16, 32, 64)),
    ("invresunet", {"filters": 8}),
    *(("deeplabv3plus", {"alpha": a}) for a in (0.1, 0.25, 0.5, 0.75)),
)


def count_params(name: str, *, num_classes: int, **hparams: Any) -> int:
    """Parameters of `name` built with `hparams` (trainable and not, e.g. batch-norm statistics)."""
    import keras

    from models.registry import build_model

    model = build_model(name, input_shape=(None, None, 1), num_classes=num_classes, **hparams)
    count = model.count_params()
    del model
    keras.backend.clear_session()  # the big configurations would otherwise pile up in memory
    gc.collect()
    return count


# Hyperparameters that change no parameter count, left out of the table's descriptions.
NOT_IN_COUNT = ("precision", "output_prior")


def param_rows(
    *, num_classes: int, configs: Sequence[tuple[str, dict[str, Any]]] = PARAM_TABLE_CONFIGS
) -> Iterator[tuple[str, str, int]]:
    """(model, hyperparameters as text, parameter count) for every configuration of the table."""
    from models.registry import resolve_hparams

    for name, hparams in configs:
        resolved = resolve_hparams(name, hparams)
        for key in NOT_IN_COUNT:
            resolved.pop(key)
        described = ", ".join(f"{key}={value}" for key, value in resolved.items())
        yield name, described, count_params(name, num_classes=num_classes, **hparams)


def param_table(
    *, num_classes: int, configs: Sequence[tuple[str, dict[str, Any]]] = PARAM_TABLE_CONFIGS
) -> str:
    """The markdown table."""
    lines = [
        f"| model | hyperparameters (defaults filled in) | parameters ({num_classes} classes) |",
        "|---|---|---:|",
    ]
    lines += [
        f"| {name} | {described} | {count:,} |"
        for name, described, count in param_rows(num_classes=num_classes, configs=configs)
    ]
    return "\n".join(lines)


@dataclass
class ParamsConfig:
    """`python -m models.params`'s keys."""

    num_classes: int = 4  # output classes (Severstal: 4)


def main(argv: Sequence[str]) -> int:
    args = compose_schema(ParamsConfig, argv, __doc__ or "")
    require(args.num_classes >= 1, f"num_classes={args.num_classes}: must be a positive int")
    print(param_table(num_classes=args.num_classes))
    return 0


if __name__ == "__main__":
    run_cli(main)
