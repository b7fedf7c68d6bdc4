"""data.splits: seeded, disjoint, stratified by class set; val and test hold clean images in
the dataset's proportion; keep_clean decides only what train holds."""

from __future__ import annotations

import numpy as np
import pytest

from data.config import ConfigError
from data.datasets import split_config
from data.sources import Entry
from data.splits import assign_splits


def _load() -> np.ndarray:
    return np.zeros((1, 1), np.uint8)


def entries(defective: int, clean: int) -> list[Entry]:
    made = [Entry(f"d{i:04d}.jpg", 4, 4, ("1 2", ""), _load) for i in range(defective)]
    return made + [Entry(f"c{i:04d}.jpg", 4, 4, ("", ""), _load) for i in range(clean)]


def settings(**changes: object) -> dict:
    """The YAML files' split (the paper's), with `changes`."""
    split = split_config(seed=42, test_fraction=0.1, val_fraction=0.05, keep_clean=False)
    return split | changes


def ids(parts: dict[str, list[Entry]]) -> dict[str, list[str]]:
    return {name: [e.image_id for e in members] for name, members in parts.items()}


def test_same_seed_same_split_whatever_the_input_order() -> None:
    data = entries(300, 200)
    first, _ = assign_splits(data, settings())
    again, _ = assign_splits(list(reversed(data)), settings())
    other, _ = assign_splits(data, settings(seed=43))
    assert ids(first) == ids(again)
    assert ids(first)["val"] != ids(other)["val"]


def test_paper_setting_trains_on_defective_images_and_validates_on_all() -> None:
    parts, dropped = assign_splits(entries(400, 300), settings(test_fraction=0.0))
    assert all(e.defective for e in parts["train"])
    # val is 5% of everything, clean images in their 3/7 proportion: 35 images, 15 clean.
    assert (len(parts["val"]), sum(not e.defective for e in parts["val"])) == (35, 15)
    assert (len(parts["train"]), len(parts["test"])) == (380, 0)
    assert len(dropped) == 285 and not any(e.defective for e in dropped)


def test_val_and_test_keep_clean_images_in_proportion_and_splits_are_disjoint() -> None:
    data = entries(600, 400)
    parts, dropped = assign_splits(data, settings())
    test, val = parts["test"], parts["val"]
    assert len(test) == 100 and sum(not e.defective for e in test) == 40
    assert len(val) == 45 and sum(not e.defective for e in val) == 18  # 5% of the other 900
    every = [e.image_id for members in parts.values() for e in members] + [
        e.image_id for e in dropped
    ]
    assert sorted(every) == sorted(e.image_id for e in data)  # disjoint and complete
    kept, none_dropped = assign_splits(data, settings(keep_clean=True))
    assert not none_dropped
    assert any(not e.defective for e in kept["train"])
    # keep_clean changes train only: val and test are the same images either way.
    assert ids(kept)["test"] == ids(parts)["test"] and ids(kept)["val"] == ids(parts)["val"]


def test_every_class_combination_is_stratified() -> None:
    # Three class sets in 5 : 3 : 2, plus clean images: each split keeps the proportions.
    sets = {"": 400, "1 1|": 300, "|1 1": 180, "1 1|1 1": 120}
    data = [
        Entry(f"{n}{i:04d}.jpg", 4, 4, tuple(key.split("|")) if key else ("", ""), _load)
        for n, (key, count) in enumerate(sets.items())
        for i in range(count)
    ]
    parts, _ = assign_splits(data, settings(keep_clean=True, test_fraction=0.2, val_fraction=0.25))
    for name, share in (("test", 0.2), ("val", 0.25 * 0.8)):
        counts = {key: 0 for key in sets}
        for entry in parts[name]:
            counts["|".join(entry.rles) if any(entry.rles) else ""] += 1
        assert counts == {key: round(share * count) for key, count in sets.items()}, name


def test_tiny_strata_do_not_inflate_a_split() -> None:
    # Ten images in ten class sets: a 10% split is one image, not one per stratum.
    data = [
        Entry(f"x{i}.jpg", 4, 4, tuple("1 1" if k == i else "" for k in range(10)), _load)
        for i in range(10)
    ]
    parts, _ = assign_splits(data, settings(keep_clean=True))
    assert len(parts["test"]) == 1


def test_source_splits_keep_the_folders() -> None:
    def load() -> np.ndarray:
        return np.zeros((1, 1), np.uint8)

    data = [
        Entry(f"{s}/{i}.jpg", 2, 2, ("1 1",), load, s) for s in ("train", "val") for i in range(3)
    ]
    parts, _ = assign_splits(data, settings(use_source_splits=True))
    assert [len(parts[n]) for n in ("train", "val", "test")] == [3, 3, 0]
    data.append(Entry("extra/0.jpg", 2, 2, ("1 1",), load, "extra"))
    with pytest.raises(ConfigError, match="'extra/0.jpg' is in subset 'extra'"):
        assign_splits(data, settings(use_source_splits=True))


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"val_fraction": 1.5}, r"dataset.split.val_fraction=1.5: expected a fraction in \[0, 1\)"),
        ({"test_fraction": -0.1}, "dataset.split.test_fraction=-0.1"),
    ],
)
def test_bad_fractions_are_named(changes: dict, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        assign_splits(entries(5, 5), settings(**changes))


def test_missing_key_is_named() -> None:
    split = settings()
    del split["keep_clean"]
    with pytest.raises(ConfigError, match="dataset.split.keep_clean is missing"):
        assign_splits(entries(5, 5), split)


def test_a_split_prefix_is_a_random_sample_even_when_ids_follow_the_classes() -> None:
    # NEU-Seg numbers its images class by class; a search's limit_train=N takes a split's
    # first N records, so the stored order must not be the id order.
    def load() -> np.ndarray:
        return np.zeros((1, 1), np.uint8)

    classes = ("1 1", "2 1", "3 1")  # one class per third of the ids, as in NEU-Seg
    data = [
        Entry(f"train/{i:06d}.jpg", 2, 2, (classes[i * 3 // 300],), load, "train")
        for i in range(300)
    ]
    parts, _ = assign_splits(data, settings(use_source_splits=True))
    prefix = parts["train"][:30]
    assert {e.rles[0] for e in prefix} == set(classes)
    again, _ = assign_splits(list(reversed(data)), settings(use_source_splits=True))
    assert ids(again) == ids(parts)  # seeded, whatever order the source lists them in
    other, _ = assign_splits(data, settings(use_source_splits=True, seed=7))
    assert ids(other)["train"] != ids(parts)["train"]
    assert sorted(ids(other)["train"]) == sorted(ids(parts)["train"])


def _yaml_dataset(name: str, *overrides: str) -> dict:
    from omegaconf import OmegaConf

    from data.config import compose

    cfg = compose("data.conf", "prepare", [f"dataset={name}", *overrides])
    return OmegaConf.to_container(cfg.dataset, resolve=True)  # type: ignore[return-value]


@pytest.mark.parametrize(
    ("name", "root"),
    [("synthetic", None), ("severstal", ("severstal", "sample")), ("severstal-sim", None)],
)
def test_every_seeded_dataset_validates_on_clean_images_in_test_proportion(
    name: str, root: tuple[str, ...] | None
) -> None:
    """Each dataset group as its YAML file configures it: val holds clean images in the
    proportion test does (within one image of rounding); train holds none where the YAML says
    keep_clean=false (the paper's choice) and its share where it says true (the stand-in)."""
    from conftest import shared_path

    from data.sources import Problems, scan_source

    if name == "severstal-sim":
        overrides = [f"dataset.root={shared_path('severstal', 'labels')}"]
    elif root:
        overrides = [f"dataset.root={shared_path(*root)}"]
    else:
        overrides = []
    cfg = _yaml_dataset(name, *overrides)
    assert cfg["split"]["keep_clean"] == (name == "severstal-sim")
    assert not cfg["split"]["use_source_splits"]
    entries = scan_source(cfg, Problems("raise")).entries
    parts, dropped = assign_splits(entries, cfg["split"])
    clean = {k: sum(not e.defective for e in v) / max(1, len(v)) for k, v in parts.items()}
    share = sum(not e.defective for e in entries) / len(entries)
    for split in ("val", "test"):
        assert abs(clean[split] - share) <= 1.0 / len(parts[split]) + 1e-9, (split, clean, share)
    if cfg["split"]["keep_clean"]:
        assert abs(clean["train"] - share) < 0.01 and not dropped
    else:
        assert clean["train"] == 0.0 and len(dropped) > 0
