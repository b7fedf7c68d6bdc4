"""search.predict: arguments and image folders (fast); real models are in test_promote's slow test."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

from data.config import ConfigError
from search import predict


def _real_images(neu_seg: Path, folder: Path, count: int) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    sources = sorted((neu_seg / "img_dir" / "test").glob("*.jpg"))[:count]
    return [Path(shutil.copy(p, folder / p.name)) for p in sources]


def test_unreadable_image_is_named_before_any_model_loads(neu_seg: Path, tmp_path: Path) -> None:
    images = _real_images(neu_seg, tmp_path / "images", 3)
    truncated = tmp_path / "images" / "truncated.jpg"
    truncated.write_bytes(images[0].read_bytes()[:300])
    # The model path does not exist: the image error must come first, after seconds not hours.
    with pytest.raises(ConfigError) as error:
        predict.main(
            [f"model={tmp_path / 'no_model'}", f"images={tmp_path / 'images'}", "out=x.csv"]
        )
    message = str(error.value)
    assert "truncated.jpg" in message and "unreadable or truncated" in message
    assert not (tmp_path / "x.csv").exists()


def test_every_bad_file_is_counted(neu_seg: Path, tmp_path: Path) -> None:
    _real_images(neu_seg, tmp_path / "images", 2)
    (tmp_path / "images" / "a_bad.png").write_bytes(b"not a png")
    (tmp_path / "images" / "b_bad.jpg").write_bytes(b"")
    paths = predict.list_images(tmp_path / "images")
    with pytest.raises(ValueError, match=r"a_bad\.png: .*\(and 1 more unreadable file"):
        predict.check_images(paths)


def test_image_batches_never_mix_sizes(tmp_path: Path) -> None:
    from data.images import encode_png

    sizes = [(4, 6), (4, 6), (5, 6), (4, 6)]
    for i, (h, w) in enumerate(sizes):
        (tmp_path / f"{i}.png").write_bytes(encode_png(np.full((h, w), 255, np.uint8)))
    batches = list(predict.image_batches(predict.list_images(tmp_path), batch_size=8))
    assert [names for names, _ in batches] == [["0.png", "1.png"], ["2.png"], ["3.png"]]
    assert batches[0][1].shape == (2, 4, 6, 1) and batches[0][1].dtype == np.float32
    assert batches[0][1].max() == 1.0


def test_bad_arguments_are_named(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="missing model=..., images=..."):
        predict.main([])
    with pytest.raises(ConfigError, match="format=csv: valid choices: kaggle_old, kaggle_new"):
        predict.main(["model=m", "images=i", "format=csv"])
    with pytest.raises(ConfigError, match=f"images={tmp_path}: no image files"):
        predict.main(["model=m", f"images={tmp_path}"])
    with pytest.raises(ConfigError, match="not a folder"):
        predict.main(["model=m", f"images={tmp_path / 'nope'}"])


def test_a_model_path_without_its_postprocessing_is_refused(tmp_path: Path) -> None:
    lone = tmp_path / "m.keras"
    lone.write_bytes(b"PK")
    with pytest.raises(ConfigError, match=r"m\.json beside it"):
        predict.load_predictor(lone)
