"""Parameter counts: the paper's U-Net size, growth with filters and alpha, the table command."""

from __future__ import annotations

import pytest

from data.config import ConfigError
from models.params import PARAM_TABLE_CONFIGS, count_params, main, param_table


def test_unet_at_8_filters_matches_the_papers_1_94m() -> None:
    # Five stages of 8..128 plus a 256 bottleneck: 1,944,772 with 4 classes, by hand:
    # encoder 294,904 + bottleneck 885,248 + decoder 764,584 + 1x1 head 36.
    assert count_params("unet", num_classes=4, filters=8) == 1_944_772


@pytest.mark.parametrize("name", ["unet", "resunet", "invresunet"])
def test_params_rise_with_filters(name: str) -> None:
    counts = [count_params(name, num_classes=4, filters=f, depth=3) for f in (2, 4, 8)]
    assert counts[0] < counts[1] < counts[2]


def test_params_rise_with_alpha() -> None:
    counts = [count_params("deeplabv3plus", num_classes=4, alpha=a) for a in (0.1, 0.25, 0.5, 0.75)]
    assert counts == sorted(counts) and len(set(counts)) == 4


def test_table_covers_the_issue_grid_and_prints_markdown() -> None:
    assert [(n, h) for n, h in PARAM_TABLE_CONFIGS if n == "deeplabv3plus"] == [
        ("deeplabv3plus", {"alpha": a}) for a in (0.1, 0.25, 0.5, 0.75)
    ]
    assert [h["filters"] for n, h in PARAM_TABLE_CONFIGS if n in ("unet", "resunet")] == [
        8,
        16,
        32,
        64,
    ] * 2
    table = param_table(
        num_classes=4, configs=[("unet", {"filters": 8}), ("deeplabv3plus", {"alpha": 0.1})]
    )
    lines = table.splitlines()
    assert lines[1] == "|---|---|---:|"
    assert (
        lines[2] == "| unet | filters=8, activation=relu, depth=5, batch_norm=False | 1,944,772 |"
    )
    assert lines[3].startswith("| deeplabv3plus | alpha=0.1, aspp_filters=256 | ")
    with pytest.raises(ConfigError, match="num_classes=0: must be a positive int"):
        main(["num_classes=0"])
    with pytest.raises(ConfigError, match="num_classes=four: expected a whole number"):
        main(["num_classes=four"])
