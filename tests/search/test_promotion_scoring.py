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
