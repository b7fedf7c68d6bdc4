"""models.bench_step: times real training steps and refuses malformed arguments."""

from __future__ import annotations

import json

import pytest

from models import bench_step
from models.params import count_params


def test_a_small_unet_step_is_timed(capsys: pytest.CaptureFixture[str]) -> None:
    assert bench_step.main(["--hparam", "filters=8", "--batches", "2", "--steps", "2"]) == 0
    line = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert (line["model"], line["filters"], line["batch"], line["size"]) == ("unet", 8, 2, 32)
    assert line["params"] == count_params("unet", num_classes=4, filters=8)
    assert line["first_s"] > line["median_s"] >= 0  # the first step traces the graph


def test_bad_arguments_are_named(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        bench_step.main(["--hparam", "filters"])
    assert "--hparam 'filters': expected KEY=VALUE" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        bench_step.main(["--steps", "0"])
    assert "--steps 0: expected at least 1" in capsys.readouterr().err


def test_precision_is_resolved_and_reported(capsys: pytest.CaptureFixture[str]) -> None:
    from models.precision import resolve_precision

    argv = ["--hparam", "filters=8", "--batches", "2", "--steps", "1", "--precision", "auto"]
    assert bench_step.main(argv) == 0
    line = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert line["precision"] == resolve_precision("auto")
    with pytest.raises(SystemExit):
        bench_step.main(["--precision", "half"])
    assert "--precision 'half'" in capsys.readouterr().err
