"""Promotion: best checkpoints -> tuned post-processing -> ensemble -> results/NAME/final/.

    python -m search.promote experiment=NAME [top_k=3] [tta=false] [gate=true]
        [results_dir=results] [batch_size=8] [limit=0] [workers=0]

Steps (see `promote`):
1. from `leaderboard.csv`, take the best finished trial of every architecture plus the top-k
   overall, by the search's validation kaggle_dice;
2. predict the validation and test splits of the experiment's shards with each model;
3. tune each model's per-class threshold, minimum component area and (optionally) image-level
   gate on validation (`search.promotion.postprocess`);
4. choose an ensemble by greedy forward selection on validation
   (`search.promotion.ensemble`), starting from the best single model, and tune its
   post-processing the same way; a mixture that validation scores below its best single
   model is set aside for that model alone;
5. score every model and the ensemble on the test split, raw (threshold 0.5) and tuned;
6. write `final/` into `final.tmp-XXXX` first and swap it in by renames at the end, so a
   promotion that fails part-way leaves the previous good `final/` untouched.

Test scores are never used to choose anything: "best single" is the model with the best tuned
validation score, and the gains (README, docs/promotion.md) are measured on test afterwards.
"""

from __future__ import annotations

import shutil
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from omegaconf import MISSING

from data.config import ConfigError, compose_schema, require, run_cli
from search.inference.jobs import Job, exported_model, predict_split, run_jobs
from search.memory import peak_rss_mib
from search.promotion.arrays import PromotionError, Split, load_split, score
from search.promotion.candidates import Candidate, select_candidates
from search.promotion.final import WORK_PREFIX, recover_final, swap_in, write_final
from search.promotion.scoring import (
    best_single,
    choose_ensemble,
    evaluate,
    evaluate_all,
    overlay_examples,
    promotion_metrics,
    usable_cores,
)
from search.records import RecordError, read_experiment, read_leaderboard, resolve_experiment

__all__ = [
    "Candidate",
    "PromotionError",
    "Split",
    "best_single",
    "choose_ensemble",
    "evaluate",
    "load_split",
    "main",
    "overlay_examples",
    "predict_split",
    "promote",
    "recover_final",
    "score",
    "select_candidates",
    "swap_in",
]


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
    workers: int = 0,
) -> dict[str, Any]:
    """Promote an experiment folder; returns what `final/metrics.json` holds.

    `search.run` calls it at the end of a search (unless `promote=false`):

    - `experiment_dir`: `results/<experiment>/`, holding `experiment.json` (the shards URI
      under `shards`) and `leaderboard.csv` (`search.sweep.leaderboard`'s columns; `checkpoint` =
      the best checkpoint folder holding `model.keras`).
    - `top_k`: how many best trials overall, besides the best of every architecture.
    - `tta`: flip test-time augmentation (identity, left-right, top-bottom) for every model.
    - `gate`: also tune the per-class image-level gate.
    - `batch_size`: prediction batch size; `limit`: at most this many val/test images (smoke).
    - `progress`: tqdm bars on stderr.
    - `gpus`, `cpus`: each prediction task's share when Ray is running (`search.run` on a
      cluster); without Ray, prediction runs in one spawned child process, so this one loads no
      model.
    - `workers`: processes tuning the models' post-processing at once (0: one per usable core).

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
    try:
        uri = read_experiment(experiment_dir).shards_uri(experiment_dir / "experiment.json")
        rows = read_leaderboard(experiment_dir)
    except RecordError as exc:
        raise PromotionError(str(exc)) from None
    candidates = select_candidates(rows, top_k=top_k, where=experiment_dir / "leaderboard.csv")
    flips = ("none", "h", "v") if tta else ("none",)

    from data.shards import read_manifest

    manifest = read_manifest(uri)
    class_names = tuple(manifest.class_names)
    # The work folder holds the splits and every model's uint8 levels as .npy memory maps;
    # on a cluster it is on the shared file system with the experiment, where the prediction
    # tasks write. It goes when promotion ends, however it ends.
    work = Path(tempfile.mkdtemp(prefix=WORK_PREFIX, dir=experiment_dir))
    try:
        stage_s: dict[str, float] = {}
        clock = time.perf_counter()
        val = load_split(uri, "val", limit=limit, folder=work)
        test = load_split(uri, "test", limit=limit, folder=work)
        stage_s["splits"] = round(time.perf_counter() - clock, 2)
        clock = time.perf_counter()
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
        stage_s["predict"] = round(time.perf_counter() - clock, 2)
        clock = time.perf_counter()
        val_probs = [by_split["val"] for by_split in levels]
        test_probs = [by_split["test"] for by_split in levels]
        workers = workers or usable_cores()
        evaluated, tune_peaks = evaluate_all(
            val_probs, test_probs, val, test, class_names=class_names, gate=gate, workers=workers
        )
        results = {c.name: r for c, r in zip(candidates, evaluated, strict=True)}
        stage_s["tune+score models"] = round(time.perf_counter() - clock, 2)
        clock = time.perf_counter()
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
        stage_s["ensemble"] = round(time.perf_counter() - clock, 2)
        stage_s.update({f"tune:{name}": float(r["tune_s"]) for name, r in results.items()})

        metrics = promotion_metrics(
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
        metrics["stage_s"] = stage_s
        metrics["peak_rss_mib"] = {
            "driver": peak_rss_mib(),
            "predict": max(p["peak_rss_mib"] for p in where),
            "tune_workers": max(tune_peaks, default=None),
            "tune_processes": min(workers, len(candidates)),
        }
        write_final(
            experiment_dir,
            candidates,
            results,
            ens_result,
            selection,
            metrics,
            rows,
            overlays=overlays,
            exported={c.name: exported_model(work, c.name) for c in candidates},
            class_names=class_names,
            tta=tta,
            flips=flips,
        )
    finally:  # open memory maps stay readable until dropped: unlinking is safe on POSIX
        shutil.rmtree(work, ignore_errors=True)
    return metrics


# --- CLI -----------------------------------------------------------------------------------------


@dataclass
class PromoteConfig:
    """`python -m search.promote`'s keys (see the module docstring)."""

    experiment: str = MISSING
    results_dir: str = "results"
    top_k: int = 3
    tta: bool = False
    gate: bool = True
    batch_size: int = 8
    limit: int = 0  # 0 = every val/test image
    workers: int = 0  # processes tuning post-processing at once; 0 = one per usable core
    lock_stale_s: float = 60.0


def main(argv: Sequence[str]) -> int:
    args = compose_schema(PromoteConfig, argv, __doc__ or "")
    require(
        args.top_k >= 0 and args.limit >= 0 and args.batch_size >= 1 and args.workers >= 0,
        f"top_k={args.top_k}, limit={args.limit}, batch_size={args.batch_size}, "
        f"workers={args.workers}: top_k, limit and workers must be >= 0 and batch_size >= 1",
    )
    experiment_dir = resolve_experiment(args.experiment, args.results_dir)
    from search.lock import ExperimentLock

    with ExperimentLock(experiment_dir, command="search.promote", stale_after_s=args.lock_stale_s):
        return _promote_command(experiment_dir, args)


def with_interval(score: dict[str, Any], key: str = "kaggle_dice", sign: str = "") -> str:
    """'0.9541 [0.9502, 0.9580]' (a score, or a difference with sign='+')."""
    low, high = score["interval95"]
    return f"{score[key]:{sign}.4f} [{low:{sign}.4f}, {high:{sign}.4f}]"


def _promote_command(experiment_dir: Path, args: PromoteConfig) -> int:
    try:
        metrics = promote(
            experiment_dir,
            top_k=args.top_k,
            tta=args.tta,
            gate=args.gate,
            batch_size=args.batch_size,
            limit=args.limit or None,
            workers=args.workers,
        )
    except (RuntimeError, ValueError) as exc:  # PromotionError, ShardError, ImageError...
        if isinstance(exc, ConfigError):
            raise
        raise ConfigError(str(exc)) from exc
    gains = metrics["gains_on_test"]
    best = next(m for m in metrics["models"] if m["name"] == metrics["best_single"])
    ens = metrics["ensemble"]["test"]["tuned"]
    print(
        f"promoted {len(metrics['models'])} model(s) to {experiment_dir / 'final'}; test "
        f"kaggle_dice (95% interval over images): best single "
        f"{with_interval(best['test']['raw'])} raw / {with_interval(best['test']['tuned'])} "
        f"tuned, ensemble {with_interval(ens)}; predict-nothing {gains['baseline']:.4f}; "
        f"the ensemble's lift over it {with_interval(ens['lift_over_nothing'], 'value', '+')}"
    )
    stages = metrics.get("stage_s") or {}
    if stages:
        print("seconds by stage: " + ", ".join(f"{k} {v:.1f}" for k, v in stages.items()))
    peaks = metrics.get("peak_rss_mib") or {}
    if peaks:
        print("peak resident MiB: " + ", ".join(f"{k} {v}" for k, v in peaks.items()))
    return 0


if __name__ == "__main__":
    run_cli(main)
