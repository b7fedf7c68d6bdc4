"""search.promotion.scoring: what the report shows and the ensemble choice rest on."""

from __future__ import annotations

import numpy as np

from search.promotion.arrays import Split
from search.promotion.scoring import overlay_examples


def test_overlays_show_every_class_present() -> None:
    masks = np.zeros((5, 4, 4, 3), dtype=bool)
    masks[0, :1, :1, 0] = True
    masks[1, :, :, 0] = True  # the most class-0 pixels
    masks[3, :2, :2, 2] = True  # the only class-2 image; class 1 is absent from the split
    sizes = np.full((5, 2), 4)
    split = Split("test", list("abcde"), np.zeros((5, 4, 4), np.uint8), masks, sizes)
    chosen = overlay_examples(split, masks, count=3)
    assert chosen["image_id"].tolist()[:2] == ["b", "d"]
    assert len(chosen["index"]) == 3


def test_the_drivers_dice_is_the_models_metric() -> None:
    """Promotion scores with `arrays.pair_dice` (no Keras): it must be the metric."""
    from models.metrics import pair_dice as metric
    from search.promotion.arrays import pair_dice

    rng = np.random.default_rng(3)
    truth = rng.random((6, 8, 8, 4)) < 0.2
    pred = rng.random((6, 8, 8, 4)) < 0.2
    truth[0], pred[0] = False, False  # empty/empty pairs score 1
    truth[1, ..., 2], pred[2, ..., 1] = False, False  # one side empty
    pred[3] = truth[3]
    np.testing.assert_array_equal(pair_dice(truth, pred), metric(truth, pred))
    assert pair_dice(truth, pred)[0].tolist() == [1.0] * 4


def test_models_are_tuned_over_worker_processes_as_they_are_here() -> None:
    """`evaluate_all` with 2 spawned workers returns what it computes in this process."""
    from search.promotion.scoring import evaluate_all

    rng = np.random.default_rng(5)
    masks = np.zeros((6, 16, 16, 2), dtype=bool)
    masks[:3, 4:10, 4:10, 0] = True
    masks[2:5, :6, 8:, 1] = True
    sizes = np.full((6, 2), 16)
    split = Split("val", [f"i{k}" for k in range(6)], np.zeros((6, 16, 16), np.uint8), masks, sizes)
    levels = [
        np.clip(masks * 200 + rng.integers(0, 90, masks.shape), 0, 255).astype(np.uint8)
        for _ in range(3)
    ]
    kwargs = {"class_names": ("a", "b"), "gate": True}
    here, none = evaluate_all(levels, levels, split, split, workers=1, **kwargs)
    spread, peaks = evaluate_all(levels, levels, split, split, workers=2, **kwargs)
    assert none == [] and len(peaks) == 3 and all(p > 0 for p in peaks)
    from search.promotion.arrays import IMAGES

    def plain(result: dict) -> dict:
        return {
            split: {
                kind: {k: v for k, v in score.items() if k != IMAGES}
                for kind, score in kinds.items()
            }
            for split, kinds in ((s, result[s]) for s in ("val", "test"))
        }

    for a, b in zip(here, spread, strict=True):
        assert a["postprocess"] == b["postprocess"] and plain(a) == plain(b)
        np.testing.assert_array_equal(a["test"]["tuned"][IMAGES], b["test"]["tuned"][IMAGES])
