"""Submissions: the RLE written decodes through data.rle to exactly the masks given."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest

from data import rle
from search.inference import submission


def _random_masks(rng: np.random.Generator, n: int, shape=(12, 20), classes: int = 4):
    out = {}
    for i in range(n):
        masks = rng.random((*shape, classes)) < 0.3
        masks[..., i % classes] = False  # some empty masks in every image
        out[f"img{i:03d}.jpg"] = masks
    out["clean.jpg"] = np.zeros((*shape, classes), dtype=bool)
    return out


@pytest.mark.parametrize("fmt", ["kaggle_old", "kaggle_new"])
def test_submission_decodes_to_exactly_the_masks(tmp_path: Path, fmt: str) -> None:
    masks = _random_masks(np.random.default_rng(0), 6)
    out = tmp_path / "sub" / "submission.csv"
    rows = submission.write_submission(out, masks.items(), fmt=fmt, class_ids=(1, 2, 3, 4))
    shapes = {image: m.shape[:2] for image, m in masks.items()}
    back = submission.read_submission(out, shapes=shapes, class_ids=(1, 2, 3, 4), fmt=fmt)
    assert back.keys() == masks.keys()
    for image, expected in masks.items():
        assert np.array_equal(back[image], expected), image
    non_empty = sum(int(m[..., c].any()) for m in masks.values() for c in range(4))
    assert rows == (4 * len(masks) if fmt == "kaggle_old" else non_empty)
    assert [p.name for p in out.parent.iterdir()] == ["submission.csv"]  # no temp file left


def test_old_layout_has_a_row_for_every_image_and_class(tmp_path: Path) -> None:
    masks = {"a.jpg": np.zeros((4, 5, 3), bool), "b.jpg": np.ones((4, 5, 3), bool)}
    out = tmp_path / "submission.csv"
    submission.write_submission(out, masks.items(), fmt="kaggle_old", class_ids=(1, 2, 3))
    rows = list(csv.reader(out.open()))
    assert rows[0] == ["ImageId_ClassId", "EncodedPixels"]
    assert [r[0] for r in rows[1:]] == [f"{i}.jpg_{c}" for i in "ab" for c in (1, 2, 3)]
    assert rows[1][1] == "" and rows[4][1] == "1 20"


def test_real_severstal_labels_round_trip_in_the_new_layout(
    tmp_path: Path, severstal_sample: Path
) -> None:
    source = list(csv.DictReader((severstal_sample / "train.csv").open()))
    images = sorted({r["ImageId"] for r in source})
    masks = {image: np.zeros((256, 1600, 4), dtype=bool) for image in images}
    for row in source:
        where = f"train.csv image {row['ImageId']}"
        masks[row["ImageId"]][..., int(row["ClassId"]) - 1] = rle.decode(
            row["EncodedPixels"], 256, 1600, where=where
        )
    out = tmp_path / "submission.csv"
    submission.write_submission(out, masks.items(), fmt="kaggle_new", class_ids=(1, 2, 3, 4))
    written = {(r["ImageId"], r["ClassId"]): r["EncodedPixels"] for r in csv.DictReader(out.open())}
    expected = {(r["ImageId"], r["ClassId"]): r["EncodedPixels"].strip() for r in source}
    assert written == expected


def test_bad_inputs_are_named(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="format='csv' is not a submission layout"):
        submission.SubmissionWriter(tmp_path / "s.csv", fmt="csv", class_ids=(1,))
    with pytest.raises(ValueError, match=r"x.jpg: expected masks of shape \(H, W, 2\)"):
        submission.write_submission(
            tmp_path / "s.csv", [("x.jpg", np.zeros((3, 3, 1), bool))], class_ids=(1, 2)
        )
    assert not (tmp_path / "s.csv").exists()  # the failed write left nothing behind
    (tmp_path / "bad.csv").write_text("ImageId,ClassId,EncodedPixels\nx.jpg,1,5 3 1 2\n")
    with pytest.raises(rle.RLEError, match="bad.csv row 2, image x.jpg, class 1"):
        submission.read_submission(tmp_path / "bad.csv", shapes={"x.jpg": (4, 4)}, class_ids=(1,))


@pytest.mark.parametrize("fmt", ["kaggle_old", "kaggle_new"])
def test_score_equals_the_kaggle_metric_on_the_decoded_masks(tmp_path: Path, fmt: str) -> None:
    from models.metrics import kaggle_dice

    rng = np.random.default_rng(4)
    truth = _random_masks(rng, 5)
    pred = {image: m ^ (rng.random(m.shape) < 0.1) for image, m in truth.items()}
    pred["clean.jpg"][...] = False  # an empty/empty pair scores 1
    solution, sub = tmp_path / "solution.csv", tmp_path / "submission.csv"
    submission.write_submission(solution, truth.items(), fmt="kaggle_old", class_ids=(1, 2, 3, 4))
    submission.write_submission(sub, pred.items(), fmt=fmt, class_ids=(1, 2, 3, 4))
    result = submission.score_submission(sub, solution)
    images = sorted(truth)
    expected = kaggle_dice(
        np.stack([truth[i] for i in images]), np.stack([pred[i] for i in images])
    )
    assert result["kaggle_dice"] == pytest.approx(expected)
    nothing = kaggle_dice(np.stack([truth[i] for i in images]), np.zeros((6, 12, 20, 4), bool))
    assert result["predict_nothing"] == pytest.approx(nothing) and result["images"] == 6


def test_score_names_a_pair_the_solution_does_not_have(tmp_path: Path) -> None:
    from data.config import run_cli
    from search.score import main

    masks = _random_masks(np.random.default_rng(1), 2)
    solution, sub = tmp_path / "solution.csv", tmp_path / "submission.csv"
    submission.write_submission(solution, masks.items(), fmt="kaggle_old", class_ids=(1, 2, 3, 4))
    extra = {**masks, "stranger.jpg": masks["img000.jpg"]}
    submission.write_submission(sub, extra.items(), fmt="kaggle_old", class_ids=(1, 2, 3, 4))
    with pytest.raises(SystemExit) as done:
        run_cli(main, [f"submission={sub}", f"solution={solution}"])
    assert done.value.code == 2
    with pytest.raises(ValueError, match=r"image 'stranger.jpg' class 1 is not in .*solution.csv"):
        submission.score_submission(sub, solution)
