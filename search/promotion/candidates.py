"""Which trials promotion takes: the best finished trial of every architecture plus the top-k
overall, read from the search's leaderboard (`search.records.read_leaderboard`)."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from search.promotion.arrays import PromotionError
from search.records import TrialRow
from search.sweep.leaderboard import resolve_checkpoint

__all__ = ["Candidate", "select_candidates"]


@dataclass(frozen=True)
class Candidate:
    trial_id: str
    model: str  # architecture name
    val_kaggle_dice: float  # from the search
    checkpoint: Path
    hparams: dict[str, Any] = field(default_factory=dict)
    row: dict[str, Any] = field(default_factory=dict)  # the leaderboard row's cells

    @property
    def name(self) -> str:
        return f"{self.model}_{self.trial_id}"


def select_candidates(rows: Sequence[TrialRow], *, top_k: int, where: Path) -> list[Candidate]:
    """Best finished trial of every architecture plus the top-k overall, best first.

    `where` is the leaderboard file; checkpoints recorded there are looked up relative to its
    folder (older leaderboards: absolute paths, moved with the folder when they are gone).
    """
    finished = [
        Candidate(
            trial_id=row.trial_id,
            model=row.model,
            val_kaggle_dice=float(row.score),
            checkpoint=resolve_checkpoint(row.checkpoint, where.parent),
            hparams=_typed_hparams(row.model, row.hparams),
            row=dict(row.cells),
        )
        for row in rows
        # A trial that scored exactly 0.0 is a candidate too; only a missing or non-finite
        # score is not.
        if row.completed and row.checkpoint and math.isfinite(row.score)
    ]
    if not finished:
        statuses = sorted({r.status for r in rows}) or ["(no rows)"]
        raise PromotionError(
            f"{where}: no finished trial with a checkpoint and a validation score "
            f"(statuses present: {', '.join(statuses)})"
        )
    ranked = sorted(finished, key=lambda c: -c.val_kaggle_dice)
    chosen = {c.trial_id: c for c in ranked[: max(top_k, 0)]}
    for candidate in ranked:  # the first of an architecture in rank order is its best
        if not any(c.model == candidate.model for c in chosen.values()):
            chosen[candidate.trial_id] = candidate
    return sorted(chosen.values(), key=lambda c: -c.val_kaggle_dice)


def _typed_hparams(model: str, values: Mapping[str, Any]) -> dict[str, Any]:
    """A leaderboard row's hyperparameters in their architecture's types (a column another
    architecture fills but this one leaves empty is left out)."""
    import models

    spec = models.hparam_spec(model) if model in models.model_names() else {}
    return {
        key: spec[key].validate(value, model=model) if key in spec else value
        for key, value in values.items()
        if value is not None
    }
