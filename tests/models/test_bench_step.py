"""models.bench_step: times real training steps and refuses malformed arguments."""

from __future__ import annotations

import json

import pytest

from data.config import ConfigError
from models import bench_step
from models.params import count_params


def test_a_small_unet_step_is_timed(capsys: pytest.CaptureFixture[str]) -> None:
    assert bench_step.main(["hparam={filters:8}", "batches=[2]", "steps=2"]) == 0
    line = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert (line["model"], line["filters"], line["batch"], line["size"]) == ("unet", 8, 2, "32x32")
    assert line["images_per_s"] == pytest.approx(2 / line["median_s"], rel=0.02)
    assert line["backend"] == "tensorflow" and line["device"].startswith("CPU")
    assert line["peak_device_mib"] is None and line["peak_host_mib"] > 0
    assert line["params"] == count_params("unet", num_classes=4, filters=8)
    assert line["first_s"] > line["median_s"] >= 0  # the first step traces the graph


@pytest.mark.parametrize(
    "argv,expected",
    [
        (["hparam=8"], "hparam=8: expected a mapping such as 'hparam={filters:64,depth:5}'"),
        (["steps=0"], "steps=0: expected at least 1"),
        (["size=256x"], "size=256x: expected N or HxW with positive integers"),
        (["batches=[]"], "batches=[]: expected one or more batch sizes >= 1"),
        (["batches=[8,0]"], "batches=[8, 0]: expected one or more batch sizes >= 1"),
        (["filters=[eight]"], "filters[0]=[eight]: expected a whole number (int)"),
        (["backend=torch"], "backend=torch: expected one of tensorflow, jax"),
        (["precision=half"], "precision=half: expected one of auto, float32, mixed_float16"),
        (["--steps", "2"], "argument '--steps' is not of the form key=value"),
    ],
)
def test_bad_arguments_are_named(argv: list[str], expected: str) -> None:
    with pytest.raises(ConfigError) as refused:
        bench_step.main(argv)
    assert str(refused.value).startswith(expected)


def test_hparam_replaces_the_default_mapping_as_a_whole(capsys) -> None:
    assert bench_step.main(["hparam={depth:2}", "batches=[2]", "steps=1", "size=16"]) == 0
    line = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert (line["depth"], line["size"]) == (2, "16x16") and "filters" not in line  # not 64
    assert line["params"] == count_params("unet", num_classes=4, depth=2)
    assert bench_step.parse_size("256X1600") == (256, 1600)


def test_precision_is_resolved_and_reported(capsys: pytest.CaptureFixture[str]) -> None:
    from models.precision import resolve_precision

    argv = ["hparam={filters:8}", "batches=[2]", "steps=1", "precision=auto"]
    assert bench_step.main(argv) == 0
    line = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert line["precision"] == resolve_precision("auto")


def _bench_lines(*argv: str) -> list[dict]:
    """The JSON lines of `python -m models.bench_step ARGV` run as a user runs it."""
    import os
    import subprocess
    import sys
    from pathlib import Path

    done = subprocess.run(
        [sys.executable, "-m", "models.bench_step", *argv],
        cwd=Path(__file__).resolve().parents[2],
        env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"},
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return [json.loads(x) for x in done.stdout.splitlines() if x.startswith("{")]


@pytest.mark.slow
def test_each_filters_value_runs_in_its_own_process_on_the_chosen_backend() -> None:
    argv = ["hparam={depth:2}", "filters=[4,8]", "size=32x48", "batches=[2]"]
    lines = _bench_lines(*argv, "steps=2", "backend=jax")
    assert [(x["filters"], x["backend"], x["size"]) for x in lines] == [
        (4, "jax", "32x48"),
        (8, "jax", "32x48"),
    ]
    assert lines[0]["params"] == count_params("unet", num_classes=4, filters=4, depth=2)


def test_concurrent_is_refused_where_it_would_be_ambiguous() -> None:
    with pytest.raises(ConfigError, match="concurrent=0: expected at least 1"):
        bench_step.main(["concurrent=0"])
    with pytest.raises(ConfigError, match="concurrent=2 packs copies of one model, give one filt"):
        bench_step.main(["concurrent=2", "filters=[4,8]"])
    with pytest.raises(ConfigError, match="concurrent=2 times one batch size, give one batches"):
        bench_step.main(["concurrent=2", "batches=[2,4]"])


@pytest.mark.slow
def test_concurrent_copies_are_timed_together_and_summed() -> None:
    argv = ["hparam={depth:2,filters:4}", "size=32x48", "batches=[2]"]
    lines = _bench_lines(*argv, "steps=4", "concurrent=2")
    copies, summary = lines[:-1], lines[-1]
    assert [(x["filters"], x["batch"], x["steps"]) for x in copies] == [(4, 2, 4), (4, 2, 4)]
    assert summary["concurrent"] == 2
    # 2 copies x 4 steps x 2 images over the longer of the two timing windows.
    longest = max(x["window_s"] for x in copies)
    assert summary["total_images_per_s"] == pytest.approx(16 / longest, rel=0.01)
