"""search.bench.trial: the plain Keras fit it times a Tune trial against."""

from __future__ import annotations

from pathlib import Path

import pytest

from search.bench import trial as bench

ONE_POINT = [
    "preset=smoke",
    "space=unet",
    "space.models.unet.grid.filters=[4]",
    "space.models.unet.grid.activation=[relu]",
    "space.models.unet.grid.loss=[bce]",
]


@pytest.mark.slow
def test_the_plain_fit_trains_the_first_grid_point_through_the_trials_own_setup(
    tmp_path: Path,
) -> None:
    out = bench.plain_fit([*ONE_POINT, "train.epochs=2", f"results_dir={tmp_path}"])
    # train.precision=auto, as this machine resolves it (mixed_bfloat16 on AVX512-BF16 CPUs).
    from models import resolve_precision

    assert out["precision"] == resolve_precision("auto")
    assert out["images_per_s"] > 0 and out["fit_s"] > 0
    # It prepared the experiment's shards as search.run would, in the same place.
    assert list((tmp_path).glob("*/shards/manifest.json"))


def test_trial_throughput_needs_exactly_one_trial(tmp_path: Path) -> None:
    from data.config import ConfigError

    (tmp_path / "tune").mkdir()
    with pytest.raises(ConfigError, match="expected one trial, found 0"):
        bench.trial_images_per_s(tmp_path)
