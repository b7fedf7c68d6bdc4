"""data.bench_verify: the shard check's cost, first run against stamped."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from data.bench_verify import main, simulated_manifest, timed_checks
from data.config import ConfigError
from data.shards import ShardError, verify_shards


def test_simulated_shards_are_real_and_checked_then_stamped(tmp_path: Path) -> None:
    folder = tmp_path / "sim"
    folder.mkdir()
    manifest = simulated_manifest(folder, 0.004, shard_bytes=2**20)  # shards of two images
    shards = manifest.splits["train"].shards
    assert len(shards) == round(0.004e9 / shards[0].bytes) >= 3
    figures = timed_checks(manifest, ("train",), tmp_path)
    assert figures["shards"] == len(shards) and figures["stamped_hashed"] == 0
    assert figures["gb"] == pytest.approx(len(shards) * shards[0].bytes / 1e9, abs=1e-3)
    # The simulated manifest is honest: a changed byte in one copy is caught by name.
    path = folder / shards[2].path
    data = bytearray(path.read_bytes())
    data[-100] ^= 0xFF
    path.write_bytes(bytes(data))
    with pytest.raises(ShardError, match="train-00002.arrow: sha256 does not match"):
        verify_shards(manifest, ("train",), stamp=tmp_path / "verified.json")


def test_cli_prints_json_last_and_refuses_no_work(neu_seg: Path, tmp_path: Path, capsys) -> None:
    from data.config import compose
    from data.prepare import prepare

    cfg = compose(
        "data.conf",
        "prepare",
        ["dataset=neu-seg", f"dataset.root={neu_seg}", "dataset.max_images=40"],
    )
    prepare(cfg.dataset, out=str(tmp_path / "shards"))
    assert main([f"shards={tmp_path / 'shards'}", f"dir={tmp_path}"]) == 0
    figures = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert figures["shards"]["shards"] >= 2 and figures["shards"]["stamped_hashed"] == 0
    with pytest.raises(ConfigError, match="give shards=URI and/or simulate_gb=N"):
        main([])
    with pytest.raises(ConfigError, match="simulate_gb=-1.0: expected a positive number"):
        main(["simulate_gb=-1"])
    with pytest.raises(ConfigError, match="simulate_gb=lots: expected a number"):
        main(["simulate_gb=lots"])
