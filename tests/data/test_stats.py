"""data.stats: hand-made labels, and the real Severstal figures that SOURCES.md quotes."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest

from data.config import ConfigError
from data.datasets import severstal_config, split_config, synthetic_config
from data.prepare import prepare
from data.stats import label_stats, labels_from_csv, main, shard_stats, stats_from_rles


def test_figures_of_hand_made_labels() -> None:
    # image 0: class a (3 px) and b (2 px); image 1: clean; image 2: b (5 px).
    stats = stats_from_rles([("1 3", "7 2"), ("", ""), ("", "2 5")], ["a", "b"])
    assert (stats["images"], stats["defective"], stats["clean"]) == (3, 2, 1)
    assert stats["images_per_class"] == {"a": 1, "b": 2}
    assert stats["images_with_n_classes"] == {"1": 1, "2": 1}
    assert stats["area_pixels"]["b"]["count"] == 2
    assert stats["area_pixels"]["b"]["mean"] == 3.5
    assert (stats["area_pixels"]["a"]["min"], stats["area_pixels"]["a"]["max"]) == (3, 3)


def test_real_flags_match_the_published_figures(severstal_labels: Path) -> None:
    presence, areas, names = labels_from_csv(severstal_labels / "defect_flags_12568.csv")
    stats = label_stats(presence, areas, names)
    # SOURCES.md / the paper: 12,568 images; 6,666 defective; 5,902 clean; 6,239 with one
    # class; images per class 897 / 247 / 5,150 / 801.
    assert (stats["images"], stats["defective"], stats["clean"]) == (12_568, 6_666, 5_902)
    assert stats["images_with_n_classes"]["1"] == 6_239
    assert list(stats["images_per_class"].values()) == [897, 247, 5_150, 801]
    assert sum(int(v) * n for v, n in stats["images_with_n_classes"].items()) == sum(
        stats["images_per_class"].values()
    )


def test_sample_shards_agree_with_the_flags(
    severstal_sample: Path, severstal_labels: Path, tmp_path: Path
) -> None:
    split = split_config(test_fraction=0.2, val_fraction=0.05)
    dataset = severstal_config(severstal_sample, split=split)
    prepare(dataset, out=str(tmp_path))
    figures = shard_stats(str(tmp_path))
    overall = figures["all"]
    assert figures["source"] == overall  # keep_clean=true: every image is in the shards
    with (severstal_labels / "defect_flags_12568.csv").open(newline="") as handle:
        rows = {r[0]: [int(v) for v in r[1:]] for r in csv.reader(handle)}
    flags = np.array([rows[p.name] for p in sorted((severstal_sample / "train_images").iterdir())])
    assert overall["images"] == 22
    assert overall["defective"] == int((flags.sum(1) > 0).sum())
    assert list(overall["images_per_class"].values()) == flags.sum(0).tolist()
    with (severstal_sample / "train.csv").open(newline="") as handle:
        areas = sorted(
            sum(int(n) for n in r["EncodedPixels"].split()[1::2]) for r in csv.DictReader(handle)
        )
    class_areas = overall["area_pixels"]
    assert sum(d["count"] for d in class_areas.values()) == len(areas)
    assert min(d["min"] for d in class_areas.values() if d["count"]) == areas[0]
    assert max(d["max"] for d in class_areas.values() if d["count"]) == areas[-1]


def test_cli_prints_the_figures(severstal_labels: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main([f"labels={severstal_labels / 'defect_flags_12568.csv'}"]) == 0
    text = capsys.readouterr().out
    assert "images 12568  defective 6666  clean 5902" in text
    assert "images per class: 1: 897  2: 247  3: 5150  4: 801" in text
    assert "images with n classes: 1: 6239" in text


def test_cli_prints_json_on_request(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    flags = tmp_path / "flags.csv"
    flags.write_text("ImageId_ClassId,1,2\na.jpg,1,0\nb.jpg,0,0\n")
    assert main([f"labels={flags}", "json=true"]) == 0
    figures = json.loads(capsys.readouterr().out)
    assert (figures["all"]["defective"], figures["all"]["clean"]) == (1, 1)


def test_cli_names_what_is_wrong(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="manifest.json: no manifest"):
        main([f"shards={tmp_path}"])
    new_layout = tmp_path / "train.csv"
    new_layout.write_text("ImageId,ClassId,EncodedPixels\na.jpg,1,1 2\n")
    with pytest.raises(ConfigError, match="omits clean images"):
        main([f"labels={new_layout}"])
    with pytest.raises(ConfigError, match=r"^labels=.*nope.csv: No such file"):
        main([f"labels={tmp_path / 'nope.csv'}"])
    for argv in ([], [f"shards={tmp_path}", f"labels={new_layout}"]):
        with pytest.raises(ConfigError, match="give either shards=DIR_OR_URI or labels=CSV"):
            main(argv)
    with pytest.raises(ConfigError, match="json=maybe: expected true or false"):
        main([f"labels={new_layout}", "json=maybe"])


def test_empty_prediction_score_is_the_metric_of_an_all_empty_prediction(tmp_path: Path) -> None:
    from data.reader import iter_examples
    from data.stats import empty_prediction_score
    from models.metrics import kaggle_dice, per_class_dice

    dataset = synthetic_config(
        num_images=60,
        height=32,
        width=48,
        seed=3,
        clean_fraction=0.3,
        split=split_config(seed=1, test_fraction=0.2, val_fraction=0.3),
    )
    uri = str(tmp_path / "shards")
    prepare(dataset, out=uri)
    for limit in (None, 5):
        score = empty_prediction_score(uri, "val", limit=limit)
        truth = np.stack([e.masks for e in iter_examples(uri, "val", limit=limit)])
        nothing = np.zeros_like(truth)
        assert score["images"] == len(truth)
        assert score["kaggle_dice"] == pytest.approx(kaggle_dice(truth, nothing))
        assert list(score["per_class"].values()) == pytest.approx(
            list(per_class_dice(truth, nothing))
        )
        assert 0.0 < score["kaggle_dice"] < 1.0  # some defects, some empty pairs


def test_empty_prediction_score_on_neu_seg(neu_seg: Path, tmp_path: Path) -> None:
    from data.config import compose
    from data.stats import empty_prediction_score

    # The preset a user runs (data/conf/dataset/neu-seg.yaml), pointed at the shared copy.
    cfg = compose("data.conf", "prepare", ["dataset=neu-seg", f"dataset.root={neu_seg}"])
    dataset = cfg.dataset
    uri = str(tmp_path / "shards")
    prepare(dataset, out=uri)
    # DESIGN.md's figures: predicting nothing scores 0.5981 on val and 0.6003 on test.
    assert empty_prediction_score(uri, "val")["kaggle_dice"] == pytest.approx(0.5981, abs=5e-5)
    assert empty_prediction_score(uri, "test")["kaggle_dice"] == pytest.approx(0.6003, abs=5e-5)
    with pytest.raises(ValueError, match="split 'nope'"):
        empty_prediction_score(uri, "nope")


def test_real_masks_of_7179_images_agree_with_the_flags(severstal_labels: Path) -> None:
    # The RLE file (real masks of 7,179 training images) and the per-image flags file come
    # from different sources; where they overlap, a class is present iff its mask is non-empty.
    presence, areas, names = labels_from_csv(severstal_labels / "train_7179_old_format.csv")
    stats = label_stats(presence, areas, names)
    assert (stats["images"], stats["defective"], stats["clean"]) == (7_179, 4_109, 3_070)
    assert list(stats["images_per_class"].values()) == [562, 154, 3_173, 490]
    assert stats["images_with_n_classes"] == {"1": 3_841, "2": 266, "3": 2, "4": 0}
    medians = [stats["area_pixels"][n]["median"] for n in names]
    assert medians == [3_735.5, 2_874.5, 11_706.0, 24_320.5]
    assert [stats["area_pixels"][n]["max"] for n in names] == [31_303, 11_302, 368_240, 192_780]

    with (severstal_labels / "train_7179_old_format.csv").open(newline="") as handle:
        ids = list(
            dict.fromkeys(
                row["ImageId_ClassId"].rsplit("_", 1)[0] for row in csv.DictReader(handle)
            )
        )
    with (severstal_labels / "defect_flags_12568.csv").open(newline="") as handle:
        flags = {
            row["ImageId_ClassId"]: [row[c] == "1" for c in "1234"]
            for row in csv.DictReader(handle)
        }
    assert all(image in flags for image in ids)
    np.testing.assert_array_equal(presence, np.array([flags[image] for image in ids]))
