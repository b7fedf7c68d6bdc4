"""Writing `results/NAME/final/`: the promoted models (without optimizer state), their cards and
specs, the ensemble, metrics.json, the overlays and the promoted leaderboard; written into
`final.tmp-XXXX` and swapped in by renames, so a failure part-way leaves the previous final/.
"""

from __future__ import annotations

import csv
import os
import shutil
import tempfile
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from search.failpoints import failpoint
from search.promotion import ensemble
from search.promotion.candidates import Candidate
from search.records import PromotionMetrics, TrialRow
from search.sweep.leaderboard import markdown_table

__all__ = ["WORK_PREFIX", "recover_final", "swap_in", "write_final"]

WORK_PREFIX = "promotion.work-"  # the work folder of a running (or killed) promotion


def _model_card(candidate: Candidate, result: Mapping[str, Any], experiment: str) -> str:
    test, val = result["test"], result["val"]
    lines = [
        f"# {candidate.name}",
        "",
        f"Promoted from experiment `{experiment}`, trial `{candidate.trial_id}`.",
        f"Architecture `{candidate.model}`; outputs logits, apply a sigmoid for probabilities.",
        "",
        "| hyperparameter | value |",
        "|---|---|",
        *(f"| {k} | {v} |" for k, v in candidate.hparams.items() if v not in (None, "")),
        "",
        f"- search validation kaggle_dice: {candidate.val_kaggle_dice:.4f}",
        f"- validation kaggle_dice, tuned post-processing: {val['tuned']['kaggle_dice']:.4f}",
        f"- test kaggle_dice: raw {test['raw']['kaggle_dice']:.4f}, "
        f"tuned {test['tuned']['kaggle_dice']:.4f} "
        f"(95% interval over test images {_span(test['tuned'].get('interval95'))})",
        "",
        "| class | threshold | min area (% of the image) | gate | test Dice (tuned) |",
        "|---|---|---|---|---|",
    ]
    for entry in result["postprocess"].to_dict()["classes"]:
        dice = test["tuned"]["per_class"][entry["name"]]
        gate = f"{entry['gate']:.2f}" if entry["gate"] > 0 else "off"
        fraction = entry["min_area_fraction"]
        area = f"{100 * fraction:.3g}%" if fraction > 0 else "off"
        lines.append(
            f"| {entry['name']} | {entry['threshold']:.2f} | {area} | {gate} | {dice:.4f} |"
        )
    lines += [
        "",
        f"Predict: `python -m search.predict model=models/{candidate.name}.keras "
        "images=FOLDER out=submission.csv`",
        "",
    ]
    return "\n".join(lines)


def _span(interval: Sequence[float] | None) -> str:
    return "n/a" if not interval else f"{interval[0]:.4f} to {interval[1]:.4f}"


def _write_csv(path: Path, rows: Sequence[Mapping[str, Any]]) -> None:
    with path.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)


def swap_in(tmp: Path, final: Path) -> None:
    """Replace `final` by `tmp` with renames only: at no moment is a half-written final/ there.

    Between the two renames there is no `final/` at all, only `final.old-*`: a process killed
    there leaves it for `recover_final` to put back.
    """
    old = None
    if final.exists():
        old = final.with_name(f"{final.name}.old-{os.getpid()}-{time.time_ns()}")
        os.replace(final, old)
    failpoint("promote.swap")
    os.replace(tmp, final)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


def recover_final(experiment_dir: Path) -> list[str]:
    """Undo what a killed promotion left (the caller holds the experiment's lock).

    A `final.old-*` with no `final/` is the previous promotion, moved aside by a swap that
    never finished: it goes back. Every `final.tmp-*` (an unfinished promotion's output) and
    every other `final.old-*` goes, and so does every `promotion.work-*` (a killed
    promotion's splits and probabilities). Returns what was done, for the log.
    """
    final = experiment_dir / "final"
    done = []
    # final.old-<pid>-<time_ns>: the newest is the last promotion that completed.
    olds = sorted(
        experiment_dir.glob("final.old-*"),
        key=lambda p: int(p.name.rsplit("-", 1)[-1]) if p.name.rsplit("-", 1)[-1].isdigit() else 0,
    )
    if not final.exists() and olds:
        os.replace(olds[-1], final)
        done.append(f"restored {final} from {olds[-1].name}")
        olds = olds[:-1]
    stale_work = experiment_dir.glob(WORK_PREFIX + "*")
    for stale in [*olds, *experiment_dir.glob("final.tmp-*"), *stale_work]:
        shutil.rmtree(stale, ignore_errors=True)
        done.append(f"removed {stale.name}")
    return done


def write_final(
    experiment_dir: Path,
    candidates: Sequence[Candidate],
    results: Mapping[str, Mapping[str, Any]],
    ens_result: Mapping[str, Any],
    selection: ensemble.Selection,
    metrics: Mapping[str, Any],
    rows: Sequence[TrialRow],
    *,
    overlays: Mapping[str, np.ndarray],
    exported: Mapping[str, Path],
    class_names: Sequence[str],
    tta: bool,
    flips: Sequence[str],
) -> Path:
    final = experiment_dir / "final"
    tmp = Path(tempfile.mkdtemp(prefix="final.tmp-", dir=experiment_dir))
    tmp.chmod(0o755)  # mkdtemp makes it private; final/ is meant to be shared and served
    try:
        models_dir = tmp / "models"
        models_dir.mkdir()
        for c in candidates:
            # Exported by the prediction job, without the optimizer state (see search.inference.jobs)
            shutil.copyfile(exported[c.name], models_dir / f"{c.name}.keras")
            spec = ensemble.single_model_spec(
                c.name,
                f"{c.name}.keras",
                results[c.name]["postprocess"],
                class_names,
                tta=tta,
                flips=flips,
            )
            (models_dir / f"{c.name}.json").write_text(spec.to_json() + "\n")
            card = _model_card(c, results[c.name], experiment_dir.name)
            (models_dir / f"{c.name}.md").write_text(card)
        members = tuple(
            ensemble.Member(candidates[i].name, f"models/{candidates[i].name}.keras", w)
            for i, w in enumerate(selection.weights)
            if w > 0
        )
        spec = ensemble.EnsembleSpec(
            members, ens_result["postprocess"], tuple(class_names), tta, tuple(flips)
        )
        (tmp / "ensemble.json").write_text(spec.to_json() + "\n")
        (tmp / "metrics.json").write_text(PromotionMetrics.from_dict(dict(metrics)).to_json())
        failpoint("promote.write")  # the models and metrics written, the rest not yet
        np.savez_compressed(tmp / "overlays.npz", **overlays)
        board = _updated_leaderboard(rows, metrics)
        _write_csv(tmp / "leaderboard.csv", board)
        (tmp / "leaderboard.md").write_text("\n".join(markdown_table(board)) + "\n")
        swap_in(tmp, final)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return final


def _updated_leaderboard(
    rows: Sequence[TrialRow], metrics: Mapping[str, Any]
) -> list[dict[str, Any]]:
    """The search's leaderboard plus tuned-validation and test scores of what was promoted.

    The ensemble comes first; its `val_kaggle_dice` stays empty because that column is the
    search's own (raw) validation score, which an ensemble never had.
    """
    by_trial = {m["trial_id"]: m for m in metrics["models"]}

    def scores(entry: Mapping[str, Any] | None) -> dict[str, Any]:
        return {
            "promoted": entry is not None,
            "val_kaggle_dice_tuned": entry["val"]["tuned"]["kaggle_dice"] if entry else None,
            "test_kaggle_dice_raw": entry["test"]["raw"]["kaggle_dice"] if entry else None,
            "test_kaggle_dice_tuned": entry["test"]["tuned"]["kaggle_dice"] if entry else None,
        }

    nothing = metrics["baseline"]
    baseline_scores = {
        "promoted": False,
        "val_kaggle_dice_tuned": nothing["val"]["kaggle_dice"],
        "test_kaggle_dice_raw": nothing["test"]["kaggle_dice"],
        "test_kaggle_dice_tuned": nothing["test"]["kaggle_dice"],
    }
    board = [
        {
            **row.cells,
            **(baseline_scores if row.is_baseline else scores(by_trial.get(row.trial_id))),
        }
        for row in sorted(rows, key=lambda r: -(r.score if r.score is not None else -1.0))
    ]
    ens = metrics["ensemble"]
    members = "+".join(f"{m['name']}x{m['weight']:.2f}" for m in ens["members"])
    ensemble_row = {"trial_id": "ensemble", "status": "PROMOTED", "model": members}
    board.insert(0, {**{k: None for k in board[0]}, **ensemble_row, **scores(ens)})
    return _integral_columns(board)


def _integral_columns(board: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Columns whose numbers are all whole (epochs, params) as ints: CSV readers made them
    floats because of empty cells, and `2.0000 epochs` reads badly."""
    for column in board[0] if board else {}:
        values = [r[column] for r in board if r[column] is not None]
        if values and all(isinstance(v, float) and v.is_integer() and abs(v) >= 1 for v in values):
            for row in board:
                if row[column] is not None:
                    row[column] = int(row[column])
    return board
