"""Write the Severstal stand-in's unlabelled test images, as Kaggle ships its test_images/.

    python -m data.sim_images out=DIR [count=5506] [root=../shared/data/severstal/labels]
        [seed=0] [workers=0] [overwrite=false]

DIR gets `test_images/simtest-NNNNN.png` (grey, 256x1600, lossless so they are the pixels
the training shards hold) and `solution.csv`, their masks in Kaggle's old layout, which a
submission is scored against (`python -m search.score`) and which no stage of the search
reads. Images are rendered in `workers` processes (0 = one per core, at most one per 16
images). A DIR that already has a solution.csv is refused unless overwrite=true.
"""

from __future__ import annotations

import csv
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from omegaconf import MISSING

from data.config import ConfigError, compose_schema, require, run_cli
from data.datasets import SEVERSTAL_LABELS, severstal_sim_config
from data.prepare import encoded_images
from data.sources import SourceError
from data.sources.severstal_sim import TEST_IMAGES, sim_test_entries

__all__ = ["SimImagesConfig", "main", "write_sim_test"]

SOLUTION = "solution.csv"
IMAGES = "test_images"


@dataclass
class SimImagesConfig:
    """`python -m data.sim_images`'s keys."""

    out: str = MISSING  # the folder that gets test_images/ and solution.csv
    count: int = TEST_IMAGES  # Kaggle's test set has 5,506 images
    root: str = SEVERSTAL_LABELS  # the real labels the masks come from
    seed: int = 0  # the stand-in's seed (dataset.seed of dataset=severstal-sim)
    workers: int = 0  # rendering processes; 0 = one per CPU core (at most one per 16 images)
    overwrite: bool = False


def write_sim_test(
    out: Path, *, count: int, root: str, seed: int, workers: int, overwrite: bool
) -> float:
    """Render the images into `out`; returns the seconds it took."""
    require(count >= 1, f"count={count}: expected at least one image")
    require(
        overwrite or not (out / SOLUTION).exists(),
        f"{out} already holds {SOLUTION}: give overwrite=true to render its images again",
    )
    started = time.perf_counter()
    entries = sim_test_entries(severstal_sim_config(root, seed=seed), count=count)
    (out / IMAGES).mkdir(parents=True, exist_ok=True)
    rows = []
    for entry, (data, problem) in zip(
        entries, encoded_images(entries, "png", workers), strict=True
    ):
        if data is None:
            raise SourceError(problem)
        (out / IMAGES / entry.image_id).write_bytes(data)
        rows += [(f"{entry.image_id}_{k + 1}", encoded) for k, encoded in enumerate(entry.rles)]
    # The solution last, through a temporary: a DIR with solution.csv holds every image.
    temporary = out / f"{SOLUTION}.tmp"
    with temporary.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["ImageId_ClassId", "EncodedPixels"])
        writer.writerows(rows)
    temporary.replace(out / SOLUTION)
    return time.perf_counter() - started


def main(argv: Sequence[str]) -> int:
    args = compose_schema(SimImagesConfig, argv, __doc__ or "")
    out = Path(args.out)
    try:
        seconds = write_sim_test(
            out,
            count=int(args.count),
            root=args.root,
            seed=int(args.seed),
            workers=int(args.workers),
            overwrite=bool(args.overwrite),
        )
    except SourceError as exc:
        raise ConfigError(str(exc)) from None
    print(
        f"{out / IMAGES}: {args.count} images in {seconds:.1f} s "
        f"({args.count / seconds:.1f} images/s); hidden labels in {out / SOLUTION}",
        file=sys.stdout,
    )
    return 0


if __name__ == "__main__":
    run_cli(main)
