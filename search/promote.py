"""Promotion: best checkpoints -> tuned post-processing -> ensemble -> results/NAME/final/.

    python -m search.promote experiment=NAME [top_k=3] [tta=false] [gate=true]
        [results_dir=results] [batch_size=8] [limit=0]

Steps (see `promote`):
1. from `leaderboard.csv`, take the best finished trial of every architecture plus the top-k
   overall, by the search's validation kaggle_dice;
2. predict the validation and test splits of the experiment's shards with each model;
3. tune each model's per-class threshold, minimum component area and (optionally) image-level
   gate on validation (`search.postprocess`);
4. choose an ensemble by greedy forward selection on validation (`search.ensemble`), starting
   from the best single model, and tune its post-processing the same way; a mixture that
   validation scores below its best single model is set aside for that model alone;
5. score every model and the ensemble on the test split, raw (threshold 0.5) and tuned;
6. write `final/` into `final.tmp-XXXX` first and swap it in by renames at the end, so a
   promotion that fails part-way leaves the previous good `final/` untouched.

Test scores are never used to choose anything: "best single" is the model with the best tuned
validation score, and the README's gains are measured on test afterwards.
"""

from __future__ import annotations

import csv
import json
import math
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from data.config import ConfigError, run_cli
from search import ensemble, postprocess
from search.failpoints import failpoint
from search.leaderboard import BASELINE_STATUS, METRIC, resolve_checkpoint
from search.predict import parse_overrides
from search.promotion.arrays import (
    PromotionError,
    Split,
    chunks,
    load_split,
    score,
    score_levels,
)
from search.promotion.inference import Job, predict_split, run_jobs

__all__ = [
    "Candidate",
    "Split",
    "load_split",
    "predict_split",
    "score",
    "PromotionError",
    "load_leaderboard",
    "main",
    "promote",
    "hparam_columns",
    "best_single",
    "choose_ensemble",
    "select_candidates",
]

WORK_PREFIX = "promotion.work-"  # the work folder of a running (or killed) promotion
TRAILING_HPARAMS = ("learning_rate", "batch_size", "crop")
FINISHED = "TERMINATED"  # Ray Tune's status for a trial that ran to its end (or was stopped)


@dataclass(frozen=True)
class Candidate:
    trial_id: str
    model: str  # architecture name
    val_kaggle_dice: float  # from the search
    checkpoint: Path
    hparams: dict[str, Any] = field(default_factory=dict)
    row: dict[str, Any] = field(default_factory=dict)

    @property
    def name(self) -> str:
        return f"{self.model}_{self.trial_id}"


# --- experiment folder -------------------------------------------------------------------------


def resolve_experiment(name: str, results_dir: str | Path = "results") -> Path:
    """results_dir/name, or a clear error listing the experiments that do exist."""
    results = Path(results_dir)
    path = Path(name) if Path(name).is_absolute() else results / name
    if (path / "leaderboard.csv").is_file() or (path / "experiment.json").is_file():
        return path
    existing = sorted(
        p.name
        for p in (results.iterdir() if results.is_dir() else [])
        if (p / "leaderboard.csv").is_file() or (p / "experiment.json").is_file()
    )
    listing = ", ".join(existing) if existing else "(none)"
    raise ConfigError(
        f"experiment={name}: no experiment at {path.resolve()} (no leaderboard.csv or "
        f"experiment.json); experiments in {results.resolve()}: {listing}"
    )


def read_experiment(experiment_dir: Path) -> dict[str, Any]:
    path = experiment_dir / "experiment.json"
    if not path.is_file():
        raise PromotionError(f"{path} is missing: the search writes it when it starts")
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise PromotionError(f"{path}: not valid JSON ({exc})") from exc


def shards_uri(experiment: Mapping[str, Any], where: Path) -> str:
    """The shards URI the search recorded in experiment.json (`search.run.write_experiment`)."""
    value = experiment.get("shards")
    if not isinstance(value, str) or not value:
        raise PromotionError(
            f"{where}: no 'shards' URI (keys present: {', '.join(sorted(experiment))})"
        )
    return value


def load_leaderboard(experiment_dir: Path) -> list[dict[str, Any]]:
    import pandas as pd

    path = experiment_dir / "leaderboard.csv"
    if not path.is_file():
        raise PromotionError(f"{path} is missing: has the search of this experiment run?")
    frame = pd.read_csv(path, keep_default_na=False, na_values=[""])
    needed = {"trial_id", "status", "model", METRIC, "checkpoint"}
    missing = sorted(needed - set(frame.columns))
    if missing:
        raise PromotionError(f"{path}: missing column(s) {', '.join(missing)}")
    return frame.to_dict(orient="records")


def hparam_columns(rows: Sequence[Mapping[str, Any]]) -> list[str]:
    """The trial's hyperparameters: leaderboard columns after `model`, before `val_kaggle_dice`.

    `search.leaderboard` orders the columns `trial_id, status, model, <hparams>, loss,
    val_kaggle_dice, ...`; `loss` (bce | dice | bce_dice) is itself a hyperparameter of the grid.
    """
    columns = list(rows[0]) if rows else []
    if "model" not in columns or METRIC not in columns:
        return []
    found = columns[columns.index("model") + 1 : columns.index(METRIC)]
    # Hyperparameters the search places among the metrics, when a search varies them.
    return found + [c for c in TRAILING_HPARAMS if c in columns and c not in found]


def select_candidates(
    rows: Sequence[Mapping[str, Any]], *, top_k: int, where: Path
) -> list[Candidate]:
    """Best finished trial of every architecture plus the top-k overall, best first.

    `where` is the leaderboard file; checkpoints recorded there are looked up relative to its
    folder when their absolute path no longer exists.
    """
    hparams = hparam_columns(rows)
    finished = []
    for row in rows:
        score, checkpoint = row.get(METRIC), row.get("checkpoint")
        if str(row.get("status", "")).upper() != FINISHED or not isinstance(checkpoint, str):
            continue
        if not checkpoint or score is None or not math.isfinite(float(score)):
            continue
        finished.append(
            Candidate(
                trial_id=str(row["trial_id"]),
                model=str(row["model"]),
                val_kaggle_dice=float(score),
                checkpoint=resolve_checkpoint(checkpoint, where.parent),
                hparams=_typed_hparams(str(row["model"]), {k: _plain(row[k]) for k in hparams}),
                row={k: _plain(v) for k, v in row.items()},
            )
        )
    if not finished:
        statuses = sorted({str(r.get("status")) for r in rows}) or ["(no rows)"]
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
    """A leaderboard row's hyperparameters in their architecture's types.

    The CSV column of an integer hyperparameter that some row leaves empty (the baseline row,
    another architecture's trials) reads back as floats: filters 64 would be promoted as 64.0.
    """
    import models

    spec = models.hparam_spec(model) if model in models.model_names() else {}
    return {
        key: spec[key].validate(value, model=model) if key in spec and value is not None else value
        for key, value in values.items()
    }


def _plain(value: Any) -> Any:
    """NumPy/pandas scalars -> JSON-friendly Python values; NaN -> None."""
    if hasattr(value, "item"):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


# --- scoring -------------------------------------------------------------------------------------


def evaluate(
    val_probs: Any,
    test_probs: Any,
    val: Split,
    test: Split,
    *,
    class_names: Sequence[str],
    gate: bool,
) -> dict[str, Any]:
    """Tune on validation, score raw and tuned on validation and test.

    The probabilities are uint8 levels (arrays, memory maps or an ensemble `Mixture`); every
    step reads a chunk of images at a time."""
    tuned, summary = postprocess.tune(val_probs, val.masks, class_names=class_names, gate=gate)
    raw = postprocess.raw_params(len(class_names))
    return {
        "postprocess": tuned,
        "val": {
            "raw": score_levels(val.masks, val_probs, raw, class_names),
            "tuned": {"kaggle_dice": summary["val_kaggle_dice"]},
        },
        "test": {
            "raw": score_levels(test.masks, test_probs, raw, class_names),
            "tuned": score_levels(test.masks, test_probs, tuned, class_names),
        },
    }


def overlay_examples(
    test: Split, predicted: Any, *, count: int = 6, params: Any = None
) -> dict[str, np.ndarray]:
    """Test images for the report's overlays: every class shown where the split has it.

    For each class in turn, the unchosen image with the most ground-truth pixels of it; then
    images with the most defect classes, up to `count` (at least one per class). `predicted`
    is boolean masks, or uint8 levels post-processed with `params` for the chosen images only.
    """
    areas = np.concatenate(
        [np.asarray(test.masks[s]).sum(axis=(1, 2)) for s in chunks(len(test.masks))]
    )  # (N, C)
    chosen: list[int] = []
    for c in range(areas.shape[1]):
        ranked = [int(i) for i in np.argsort(-areas[:, c], kind="stable") if areas[i, c] > 0]
        pick = next((i for i in ranked if i not in chosen), None)
        if pick is not None:
            chosen.append(pick)
    by_classes = np.lexsort((np.arange(len(areas)), -(areas > 0).sum(axis=1)))
    for i in by_classes:
        if len(chosen) >= max(count, areas.shape[1]):
            break
        if int(i) not in chosen:
            chosen.append(int(i))
    order = np.asarray(chosen[: max(count, areas.shape[1])])
    shown = np.stack([np.asarray(predicted[int(i) : int(i) + 1])[0] for i in order])
    if params is not None:
        shown = postprocess.apply(shown, params)
    return {
        "index": order,
        "image_id": np.asarray([test.image_ids[i] for i in order]),
        "image": test.images[order],
        "size": test.sizes[order],  # the report cuts each overlay to it
        "truth": test.masks[order],
        "predicted": shown,
    }


# --- writing final/ ------------------------------------------------------------------------------


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
        f"tuned {test['tuned']['kaggle_dice']:.4f}",
        "",
        "| class | threshold | min area (px) | gate | test Dice (tuned) |",
        "|---|---|---|---|---|",
    ]
    for entry in result["postprocess"].to_dict()["classes"]:
        dice = test["tuned"]["per_class"][entry["name"]]
        gate = f"{entry['gate']:.2f}" if entry["gate"] > 0 else "off"
        lines.append(
            f"| {entry['name']} | {entry['threshold']:.2f} | {entry['min_area']} | {gate} | "
            f"{dice:.4f} |"
        )
    lines += [
        "",
        f"Predict: `python -m search.predict model=models/{candidate.name}.keras "
        "images=FOLDER out=submission.csv`",
        "",
    ]
    return "\n".join(lines)


def _markdown_number(value: float) -> str:
    """Four significant digits (Dice 0.7132, 6.59 s), one decimal from 100 up (1234.5 s)."""
    return f"{value:.1f}" if abs(value) >= 100 else f"{value:.4g}"


def _leaderboard_markdown(rows: Sequence[Mapping[str, Any]]) -> str:
    if not rows:
        return ""
    columns = list(rows[0])
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    for row in rows:
        cells = [
            _markdown_number(v) if isinstance(v, float) else ("" if v is None else str(v))
            for v in (row[c] for c in columns)
        ]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def _write_csv(path: Path, rows: Sequence[Mapping[str, Any]]) -> None:
    with path.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)


def _write_json(path: Path, data: Any) -> None:
    path.write_text(json.dumps(data, indent=2, default=_plain) + "\n")


def export_for_inference(checkpoint_model: Path, out: Path) -> None:
    """The checkpoint's model without its optimizer state: a third of the file for Adam.

    Trial checkpoints keep the optimizer (a resumed trial needs it); a promoted model only
    predicts. Saved uncompiled, so loading it builds no optimizer either.
    """
    import models

    model = models.load_model(checkpoint_model, compile=False)
    model.save(out)


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


# --- the whole promotion -------------------------------------------------------------------------


def promote(
    experiment_dir: Path,
    *,
    top_k: int = 3,
    tta: bool = False,
    gate: bool = True,
    batch_size: int = 8,
    limit: int | None = None,
    progress: bool = True,
    gpus: float = 0.0,
    cpus: float = 1.0,
) -> dict[str, Any]:
    """Promote an experiment folder; returns what `final/metrics.json` holds.

    `search.run` calls it at the end of a search (unless `promote=false`):

    - `experiment_dir`: `results/<experiment>/`, holding `experiment.json` (the shards URI
      under `shards`) and `leaderboard.csv` (`search.leaderboard`'s columns; `checkpoint` =
      the best checkpoint folder holding `model.keras`).
    - `top_k`: how many best trials overall, besides the best of every architecture.
    - `tta`: flip test-time augmentation (identity, left-right, top-bottom) for every model.
    - `gate`: also tune the per-class image-level gate.
    - `batch_size`: prediction batch size; `limit`: at most this many val/test images (smoke).
    - `progress`: tqdm bars on stderr.
    - `gpus`, `cpus`: each prediction task's share when Ray is running (`search.run` on a
      cluster); without Ray, prediction runs in this process.

    Raises PromotionError (a RuntimeError) naming the file or trial when the experiment has
    no finished trial, a checkpoint fails to load, or the shards cannot be read. Nothing in
    `final/` changes unless the whole promotion succeeds.
    """
    for line in recover_final(experiment_dir):
        print(f"[promote] a killed promotion left work behind: {line}", file=sys.stderr)
    started = time.perf_counter()
    experiment_dir = Path(experiment_dir)
    if not experiment_dir.is_dir():
        raise PromotionError(f"{experiment_dir} is not an experiment folder")
    experiment = read_experiment(experiment_dir)
    rows = load_leaderboard(experiment_dir)
    candidates = select_candidates(rows, top_k=top_k, where=experiment_dir / "leaderboard.csv")
    uri = shards_uri(experiment, experiment_dir / "experiment.json")
    flips = ("none", "h", "v") if tta else ("none",)

    from data.shards import read_manifest

    manifest = read_manifest(uri)
    class_names = tuple(manifest.class_names)
    # The work folder holds the splits and every model's uint8 levels as .npy memory maps;
    # on a cluster it is on the shared file system with the experiment, where the prediction
    # tasks write. It goes when promotion ends, however it ends.
    work = Path(tempfile.mkdtemp(prefix=WORK_PREFIX, dir=experiment_dir))
    try:
        val = load_split(uri, "val", limit=limit, folder=work)
        test = load_split(uri, "test", limit=limit, folder=work)
        jobs = [Job(c.name, c.checkpoint / "model.keras", c.trial_id, c.model) for c in candidates]
        levels, where = run_jobs(
            jobs,
            work,
            (val, test),
            class_names,
            uri,
            batch_size=batch_size,
            flips=flips,
            progress=progress,
            gpus=gpus,
            cpus=cpus,
        )
        val_probs = [by_split["val"] for by_split in levels]
        test_probs = [by_split["test"] for by_split in levels]
        results = {
            c.name: evaluate(v, t, val, test, class_names=class_names, gate=gate)
            for c, v, t in zip(candidates, val_probs, test_probs, strict=True)
        }
        selection, ens_result, ens_test = choose_ensemble(
            candidates,
            results,
            val_probs,
            test_probs,
            val,
            test,
            class_names=class_names,
            gate=gate,
        )
        overlays = overlay_examples(test, ens_test, params=ens_result["postprocess"])
    finally:  # open memory maps stay readable until dropped: unlinking is safe on POSIX
        shutil.rmtree(work, ignore_errors=True)

    metrics = _metrics(
        experiment_dir,
        uri,
        class_names,
        candidates,
        results,
        selection,
        ens_result,
        val=val,
        test=test,
        tta=tta,
        gate=gate,
        flips=flips,
    )
    # Where each model was predicted: this host, or a Ray worker's on a cluster.
    for entry, place in zip(metrics["models"], where, strict=True):
        entry["prediction"] = place
    metrics["promotion_s"] = round(time.perf_counter() - started, 2)
    _write_final(
        experiment_dir,
        candidates,
        results,
        ens_result,
        selection,
        metrics,
        rows,
        overlays=overlays,
        class_names=class_names,
        tta=tta,
        flips=flips,
    )
    return metrics


def best_single(candidates: Sequence[Candidate], results: Mapping[str, Mapping[str, Any]]) -> int:
    """Index of the best single model by fully tuned validation kaggle_dice (first on ties)."""
    return int(np.argmax([results[c.name]["val"]["tuned"]["kaggle_dice"] for c in candidates]))


def choose_ensemble(
    candidates: Sequence[Candidate],
    results: Mapping[str, Mapping[str, Any]],
    val_probs: Sequence[np.ndarray],
    test_probs: Sequence[np.ndarray],
    val: Split,
    test: Split,
    *,
    class_names: Sequence[str],
    gate: bool,
) -> tuple[ensemble.Selection, dict[str, Any], Any]:
    """The ensemble's selection, evaluation and test probabilities, decided on validation only.

    Greedy selection starts from the best single model by fully tuned validation score (the
    one `metrics.json` calls best_single) and adds members only while the mean's validation
    score rises. If the fully tuned ensemble then scores below that single model on
    validation, the ensemble is the single model alone: an ensemble is never chosen that
    validation says is worse than its best member. The ensemble's test probabilities come
    back as a `search.ensemble.Mixture` (read by slices), or the single model's levels.
    """
    tuned_val = [results[c.name]["val"]["tuned"]["kaggle_dice"] for c in candidates]
    best = best_single(candidates, results)
    selection = ensemble.greedy_selection(val_probs, val.masks, start=best)
    if len(selection.members) > 1:
        ens_val = ensemble.Mixture(val_probs, selection.counts)
        ens_test = ensemble.Mixture(test_probs, selection.counts)
        result = evaluate(ens_val, ens_test, val, test, class_names=class_names, gate=gate)
        if result["val"]["tuned"]["kaggle_dice"] >= tuned_val[best]:
            return selection, result, ens_test
        mixture = ", ".join(
            f"{candidates[i].name} x{selection.counts[i]}" for i in selection.members
        )
        single = tuple(int(i == best) for i in range(len(candidates)))
        selection = ensemble.Selection(
            single,
            selection.history[0][1],
            selection.history[:1],
            rejected=(
                f"the mixture ({mixture}) scored {result['val']['tuned']['kaggle_dice']:.4f} "
                f"tuned on validation, below the best single model's {tuned_val[best]:.4f}"
            ),
        )
    return selection, dict(results[candidates[best].name]), test_probs[best]


def _metrics(
    experiment_dir: Path,
    uri: str,
    class_names: Sequence[str],
    candidates: Sequence[Candidate],
    results: Mapping[str, Mapping[str, Any]],
    selection: ensemble.Selection,
    ens_result: Mapping[str, Any],
    *,
    val: Split,
    test: Split,
    tta: bool,
    gate: bool,
    flips: Sequence[str],
) -> dict[str, Any]:
    def entry(result: Mapping[str, Any]) -> dict[str, Any]:
        return {
            "val": result["val"],
            "test": result["test"],
            "postprocess": result["postprocess"].to_dict(),
        }

    models = [
        {
            "name": c.name,
            "trial_id": c.trial_id,
            "model": c.model,
            "hparams": c.hparams,
            "checkpoint": str(c.checkpoint),
            "file": f"models/{c.name}.keras",
            "search_val_kaggle_dice": c.val_kaggle_dice,
            "params": c.row.get("params"),
            **entry(results[c.name]),
        }
        for c in candidates
    ]
    best = models[best_single(candidates, results)]
    ens = {
        "members": [
            {"name": candidates[i].name, "weight": w}
            for i, w in enumerate(selection.weights)
            if w > 0
        ],
        "selection": {
            "method": "greedy forward selection with replacement (Caruana et al. 2004)",
            "history": [
                {"added": candidates[i].name, "val_score": s} for i, s in selection.history
            ],
            "val_score": selection.score,
            **({"rejected": selection.rejected} if selection.rejected else {}),
        },
        **entry(ens_result),
    }
    best_test = best["test"]
    from data.stats import empty_prediction_score

    # The same images promotion scored: the split's first N records, as load_split reads them.
    nothing = {
        split: empty_prediction_score(uri, split, limit=len(data.masks))
        for split, data in (("val", val), ("test", test))
    }
    return {
        "experiment": experiment_dir.name,
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
        "shards": uri,
        "class_names": list(class_names),
        "splits": {"val": int(val.masks.shape[0]), "test": int(test.masks.shape[0])},
        "tta": tta,
        "flips": list(flips),
        "gate": gate,
        "models": models,
        "ensemble": ens,
        "best_single": best["name"],
        # Predicting no defect on the same val and test images: what every score must clear.
        "baseline": nothing,
        "gains_on_test": {
            "baseline": nothing["test"]["kaggle_dice"],
            "best_single_raw_lift": best_test["raw"]["kaggle_dice"]
            - nothing["test"]["kaggle_dice"],
            "ensemble_tuned_lift": ens["test"]["tuned"]["kaggle_dice"]
            - nothing["test"]["kaggle_dice"],
            "best_single_raw": best_test["raw"]["kaggle_dice"],
            "best_single_tuned": best_test["tuned"]["kaggle_dice"],
            "ensemble_raw": ens["test"]["raw"]["kaggle_dice"],
            "ensemble_tuned": ens["test"]["tuned"]["kaggle_dice"],
            "postprocess_gain": best_test["tuned"]["kaggle_dice"] - best_test["raw"]["kaggle_dice"],
            "ensemble_gain_over_best_single_tuned": ens["test"]["tuned"]["kaggle_dice"]
            - best_test["tuned"]["kaggle_dice"],
            "total_gain_over_best_single_raw": ens["test"]["tuned"]["kaggle_dice"]
            - best_test["raw"]["kaggle_dice"],
        },
    }


def _write_final(
    experiment_dir: Path,
    candidates: Sequence[Candidate],
    results: Mapping[str, Mapping[str, Any]],
    ens_result: Mapping[str, Any],
    selection: ensemble.Selection,
    metrics: Mapping[str, Any],
    rows: Sequence[Mapping[str, Any]],
    *,
    overlays: Mapping[str, np.ndarray],
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
            export_for_inference(c.checkpoint / "model.keras", models_dir / f"{c.name}.keras")
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
        _write_json(tmp / "metrics.json", metrics)
        failpoint("promote.write")  # the models and metrics written, the rest not yet
        np.savez_compressed(tmp / "overlays.npz", **overlays)
        board = _updated_leaderboard(rows, metrics)
        _write_csv(tmp / "leaderboard.csv", board)
        (tmp / "leaderboard.md").write_text(_leaderboard_markdown(board))
        swap_in(tmp, final)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return final


def _updated_leaderboard(
    rows: Sequence[Mapping[str, Any]], metrics: Mapping[str, Any]
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
            **{k: _plain(v) for k, v in row.items()},
            **(
                baseline_scores
                if row.get("status") == BASELINE_STATUS
                else scores(by_trial.get(str(row["trial_id"])))
            ),
        }
        for row in sorted(rows, key=lambda r: -(_plain(r.get(METRIC)) or -1.0))
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


# --- CLI -----------------------------------------------------------------------------------------

DEFAULTS: dict[str, Any] = {
    "experiment": "",
    "results_dir": "results",
    "top_k": 3,
    "tta": False,
    "gate": True,
    "batch_size": 8,
    "limit": 0,
    "lock_stale_s": 60.0,
}


def main(argv: Sequence[str]) -> int:
    args = parse_overrides(argv, DEFAULTS, required=("experiment",))
    if args["top_k"] < 0 or args["batch_size"] < 1 or args["limit"] < 0:
        raise ConfigError("top_k and limit must be >= 0 and batch_size >= 1")
    experiment_dir = resolve_experiment(args["experiment"], args["results_dir"])
    from search.lock import ExperimentLock

    with ExperimentLock(
        experiment_dir, command="search.promote", stale_after_s=args["lock_stale_s"]
    ):
        return _promote_command(experiment_dir, args)


def _promote_command(experiment_dir: Path, args: Mapping[str, Any]) -> int:
    try:
        metrics = promote(
            experiment_dir,
            top_k=args["top_k"],
            tta=args["tta"],
            gate=args["gate"],
            batch_size=args["batch_size"],
            limit=args["limit"] or None,
        )
    except (RuntimeError, ValueError) as exc:  # PromotionError, ShardError, ImageError...
        if isinstance(exc, ConfigError):
            raise
        raise ConfigError(str(exc)) from exc
    gains = metrics["gains_on_test"]
    print(
        f"promoted {len(metrics['models'])} model(s) to {experiment_dir / 'final'}; test "
        f"kaggle_dice: best single {gains['best_single_raw']:.4f} raw / "
        f"{gains['best_single_tuned']:.4f} tuned, ensemble {gains['ensemble_tuned']:.4f}; "
        f"predict-nothing {gains['baseline']:.4f}"
    )
    return 0


if __name__ == "__main__":
    run_cli(main)
