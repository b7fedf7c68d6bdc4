"""Score a Kaggle-format submission against the labels it predicts, as Kaggle would.

    python -m search.score submission=submission.csv solution=DIR/solution.csv [json=false]

Both files may use either Kaggle layout (`ImageId_ClassId,EncodedPixels` or
`ImageId,ClassId,EncodedPixels`). The score is the mean Dice over every (image, class) pair of
the solution, empty/empty = 1, printed beside the predict-nothing score of the same pairs.
`python -m data.sim_images` writes such a solution for the Severstal stand-in's test images.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass

from omegaconf import MISSING

from data.config import ConfigError, compose_schema, run_cli
from search.inference.submission import score_submission

__all__ = ["ScoreConfig", "main"]


@dataclass
class ScoreConfig:
    """`python -m search.score`'s keys."""

    submission: str = MISSING  # the submission CSV
    solution: str = MISSING  # the labels CSV, every (image, class) pair
    json: bool = False  # print JSON instead of text


def main(argv: Sequence[str]) -> int:
    args = compose_schema(ScoreConfig, argv, __doc__ or "")
    try:
        result = score_submission(args.submission, args.solution)
    except OSError as exc:
        raise ConfigError(f"{exc.filename}: {exc.strerror or exc}") from None
    except ValueError as exc:  # the files' errors name the file, row and pair
        raise ConfigError(str(exc)) from None
    if args.json:
        print(json.dumps(result, indent=2))
        return 0
    per_class = "  ".join(f"{k}: {v:.4f}" for k, v in result["per_class"].items())
    print(
        f"{args.submission}: kaggle_dice {result['kaggle_dice']:.4f} on {result['images']} "
        f"images (predict-nothing {result['predict_nothing']:.4f}, lift "
        f"{result['lift']:+.4f})\nper class: {per_class}"
    )
    return 0


if __name__ == "__main__":
    run_cli(main)
