"""search.bench.promote: promotion's driver stages on simulated predictions, and its keys."""

from __future__ import annotations

import json

import pytest

from data.config import ConfigError
from search.bench import promote as bench_promote


def test_the_driver_stages_run_and_report_memory(capsys, tmp_path) -> None:
    argv = ["val=6", "test=7", "models=2", "size=40x64", "classes=2", f"folder={tmp_path}"]
    assert bench_promote.main(argv) == 0
    line = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert (line["val"], line["test"], line["models"], line["size"]) == (6, 7, 2, "40x64")
    assert line["peak_anon_mib"] >= line["anon_before_mib"] > 0
    assert line["peak_rss_mib"] >= line["peak_anon_mib"]
    assert 0.0 <= line["ensemble_test_tuned"] <= 1.0 and line["ensemble_members"] >= 1
    assert not list(tmp_path.iterdir())  # the simulated arrays are gone


@pytest.mark.parametrize(
    "argv,expected",
    [
        (["models=0"], "models=0: expected at least 1"),
        (["val=-1"], "val=-1: expected at least 1"),
        (["size=40x"], "size=40x: expected N or HxW with positive integers"),
        (["classes=four"], "classes=four: expected a whole number (int)"),
        (["--models", "2"], "argument '--models' is not of the form key=value"),
    ],
)
def test_bad_keys_are_named(argv: list[str], expected: str) -> None:
    with pytest.raises(ConfigError) as refused:
        bench_promote.main(argv)
    assert str(refused.value).startswith(expected)
