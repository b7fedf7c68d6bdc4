"""data.datasets: the built configs are the YAML groups' configs, so they cannot drift apart."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from omegaconf import OmegaConf

from data.config import ConfigError, compose
from data.datasets import (
    FOLDER_LAYOUT_KEYS,
    folder_config,
    neu_seg_config,
    severstal_config,
    severstal_sim_config,
    split_config,
    synthetic_config,
)
from data.prepare import prepare

WHOLE_TRAIN = [
    "dataset.split.seed=0",
    "dataset.split.test_fraction=0.0",
    "dataset.split.val_fraction=0.0",
    "dataset.split.keep_clean=true",
    "dataset.split.use_source_splits=false",
]


def group(*overrides: str) -> dict[str, Any]:
    """The dataset `python -m data.prepare` composes for `overrides`."""
    cfg = compose("data.conf", "prepare", list(overrides))
    return OmegaConf.to_container(cfg.dataset, resolve=True)  # type: ignore[return-value]


def composed(*overrides: str) -> dict[str, Any]:
    """`group(*overrides)` with every image in train."""
    return group(*overrides, *WHOLE_TRAIN)


def test_split_config_defaults_to_the_whole_train_split() -> None:
    assert split_config() == composed("dataset=synthetic")["split"]
    paper = split_config(seed=42, test_fraction=0.1, val_fraction=0.05, keep_clean=False)
    assert paper == group("dataset=severstal")["split"]


def test_severstal_config_is_the_severstal_group() -> None:
    assert severstal_config(Path("/data/sev")) == composed(
        "dataset=severstal", "dataset.root=/data/sev"
    )


def test_severstal_sim_config_is_the_severstal_sim_group() -> None:
    assert severstal_sim_config() == composed("dataset=severstal-sim")


def test_synthetic_config_is_the_synthetic_group() -> None:
    assert synthetic_config() == composed("dataset=synthetic")


def test_folder_config_is_the_folder_group_less_the_layout_keys() -> None:
    built = folder_config("/data/f", ["a", "b"])
    names = ["dataset.class_names=[a,b]", "dataset.image_suffixes=[.png]"]
    yaml = composed("dataset=folder", "dataset.root=/data/f", *names)
    assert sorted(yaml) == sorted([*built, *FOLDER_LAYOUT_KEYS])
    assert built == {key: yaml[key] for key in built}
    assert yaml["layout"] == "flat"  # what the source reads when the key is left out


def test_neu_seg_config_is_the_neu_seg_group_with_its_split_given() -> None:
    split = split_config(seed=42, test_fraction=0.1, val_fraction=0.05, use_source_splits=True)
    yaml = group("dataset=neu-seg", "dataset.root=/data/neu")
    built = neu_seg_config("/data/neu", split=split)
    assert built == {key: yaml[key] for key in built}


def test_folder_config_passes_layout_keys_and_refuses_others() -> None:
    built = folder_config("/r", ["a"], layout="class_dirs", class_dirs={"a": "a"})
    assert (built["layout"], built["class_dirs"]) == ("class_dirs", {"a": "a"})
    with pytest.raises(ConfigError, match=r"unknown key\(s\) \['layuot'\]; expected one of layout"):
        folder_config("/r", ["a"], layuot="flat")


def test_a_bare_string_is_not_taken_for_class_names() -> None:
    with pytest.raises(ConfigError, match=r"class_names='box': expected a sequence of names"):
        folder_config("/r", "box")


def test_default_split_puts_every_image_in_train(tmp_path: Path) -> None:
    manifest = prepare(synthetic_config(num_images=6, height=16, width=16), out=str(tmp_path))
    rows = {name: info.rows for name, info in manifest.splits.items()}
    assert rows == {"train": 6, "val": 0, "test": 0}
