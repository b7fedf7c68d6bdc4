"""Shared test fixtures: the real data beside the project, and the CI rule for it."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from data.config import apply_tensorflow_env

# The tests run TensorFlow in-process as the commands do: the same allocator, quiet start-up.
apply_tensorflow_env()

PROJECT_ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = PROJECT_ROOT.parent / "shared" / "data"


def shared_path(*parts: str) -> Path:
    """A path under ../shared/data. Missing data fails in CI (CI=true) and skips elsewhere."""
    path = SHARED_DATA.joinpath(*parts)
    if not path.exists():
        message = f"real data not found at {path}"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(message + " (CI=true: missing data is a failure)")
        pytest.skip(message)
    return path


@pytest.fixture(scope="session")
def severstal_sample() -> Path:
    """../shared/data/severstal/sample: train.csv (new layout) + 22 train_images."""
    return shared_path("severstal", "sample")


@pytest.fixture(scope="session")
def severstal_labels() -> Path:
    """../shared/data/severstal/labels: the 7,179-image old-format CSV (real masks) and the 12,568 images' defect flags."""
    return shared_path("severstal", "labels")


@pytest.fixture(scope="session")
def neu_seg() -> Path:
    """../shared/data/neu-seg: img_dir/{train,val,test} + ann_dir/{train,val,test}."""
    return shared_path("neu-seg")
