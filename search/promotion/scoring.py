"""Scoring a promotion on validation and test: each model tuned and scored, the ensemble chosen
on validation only, the report's overlay images picked, and what `final/metrics.json` holds.

The probabilities are uint8 levels (arrays, memory maps or an ensemble `Mixture`); every step
reads a chunk of images at a time. Test scores never choose anything.
"""

from __future__ import annotations

import multiprocessing
import os
import time
from collections.abc import Mapping, Sequence
from concurrent.futures import ProcessPoolExecutor
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from search.memory import peak_rss_mib
from search.promotion import ensemble, intervals, postprocess
from search.promotion.arrays import IMAGES, Split, chunks, score_levels
from search.promotion.candidates import Candidate
from search.records import METRIC

__all__ = [
    "best_single",
    "choose_ensemble",
    "evaluate",
    "evaluate_all",
    "overlay_examples",
    "promotion_metrics",
    "usable_cores",
]


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
    started = time.perf_counter()
    tuned, summary = postprocess.tune(
        val_probs, val.masks, class_names=class_names, gate=gate, sizes=val.sizes
    )
    tune_s = time.perf_counter() - started
    raw = postprocess.raw_params(len(class_names))
    return {
        "postprocess": tuned,
        "tune_s": round(tune_s, 2),
        "val": {
            "raw": score_levels(val.masks, val_probs, raw, class_names),
            "tuned": {"kaggle_dice": summary[METRIC]},
        },
        "test": {
            "raw": score_levels(test.masks, test_probs, raw, class_names),
            "tuned": score_levels(test.masks, test_probs, tuned, class_names, sizes=test.sizes),
        },
    }


def usable_cores() -> int:
    """The cores this process may run on (its affinity mask, not the machine's count)."""
    return len(os.sched_getaffinity(0))


def _evaluate_job(args: tuple) -> tuple[dict[str, Any], float]:
    val_probs, test_probs, val, test, class_names, gate = args
    result = evaluate(val_probs, test_probs, val, test, class_names=class_names, gate=gate)
    return result, peak_rss_mib()


def evaluate_all(
    val_probs: Sequence[Any],
    test_probs: Sequence[Any],
    val: Split,
    test: Split,
    *,
    class_names: Sequence[str],
    gate: bool,
    workers: int,
) -> tuple[list[dict[str, Any]], list[float]]:
    """`evaluate` of every model, `workers` at a time in spawned processes (1: here, in order).

    Tuning is NumPy on one core a model, reading `OnDisk` levels a chunk at a time, so the
    models spread over the cores with each worker's memory as small as the driver's. Returns
    the results in the models' order and each worker's peak resident MiB (empty with 1)."""
    jobs = [
        (v, t, val, test, tuple(class_names), gate)
        for v, t in zip(val_probs, test_probs, strict=True)
    ]
    if workers <= 1 or len(jobs) <= 1:
        return [_evaluate_job(job)[0] for job in jobs], []
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=min(workers, len(jobs)), mp_context=context) as pool:
        done = list(pool.map(_evaluate_job, jobs))
    return [result for result, _ in done], [peak for _, peak in done]


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
        shown = postprocess.apply(shown, params, sizes=test.sizes[order])
    return {
        "index": order,
        "image_id": np.asarray([test.image_ids[i] for i in order]),
        "image": test.images[order],
        "size": test.sizes[order],  # the report cuts each overlay to it
        "truth": test.masks[order],
        "predicted": shown,
    }


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
    back as a `search.promotion.ensemble.Mixture` (read by slices), or the single model's levels.
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


def promotion_metrics(
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
    best_result = results[candidates[best_single(candidates, results)].name]

    def written(score: Mapping[str, Any], reference: Mapping[str, Any] | None) -> dict[str, Any]:
        """A score without its per-image array; on test, also its paired difference to the
        best single model's (chosen on val) same score, and whether the images tell them apart."""
        out = {k: v for k, v in score.items() if k != IMAGES}
        if reference is not None and IMAGES in score and IMAGES in reference:
            out["vs_best_single"] = intervals.difference(score[IMAGES], reference[IMAGES])
        return out

    def entry(result: Mapping[str, Any]) -> dict[str, Any]:
        test = {
            kind: written(score, best_result["test"][kind])
            for kind, score in result["test"].items()
        }
        val = {kind: written(score, None) for kind, score in result["val"].items()}
        return {"val": val, "test": test, "postprocess": result["postprocess"].to_dict()}

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
