"""TensorFlow's environment (the pooled CPU allocator, quiet start-up) reaches every entry point
and every Ray trial, and a value the user set wins."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from cli_checks import python_env, run_python

from data.config import TENSORFLOW_ENV, apply_tensorflow_env, tensorflow_env

ROOT = Path(__file__).resolve().parents[2]

# A real local Ray started as the search starts it, and a real Tune trial that reports what
# its worker process sees.
PROBE = r"""
import json, os, sys, types
from search.sweep import runner

runner._init_ray(types.SimpleNamespace(cluster={"num_cpus": 1}, runtime_env={}))
from ray import tune

def trial(config):
    tune.report({key: os.environ.get(key, "unset") for key in
                 ("TF_CPU_ALLOCATOR_USE_BFC", "TF_CPP_MIN_LOG_LEVEL")})

grid = tune.Tuner(
    trial, run_config=tune.RunConfig(storage_path=sys.argv[1], name="env", verbose=0)
).fit()
print(json.dumps({k: grid[0].metrics[k] for k in
                  ("TF_CPU_ALLOCATOR_USE_BFC", "TF_CPP_MIN_LOG_LEVEL")}))
"""


@pytest.mark.parametrize("user_value", [None, "false"])
def test_a_ray_trial_sees_the_pooled_allocator_unless_the_user_chose(
    tmp_path: Path, user_value: str | None
) -> None:
    env = {
        k: v
        for k, v in python_env().items()
        if not k.startswith("RAY_")
        and k not in ("TF_CPU_ALLOCATOR_USE_BFC", "TF_CPP_MIN_LOG_LEVEL")
    }
    if user_value is not None:
        env["TF_CPU_ALLOCATOR_USE_BFC"] = user_value
    done = run_python("-c", PROBE, str(tmp_path), env=env, timeout=300, cwd=ROOT)
    assert done.returncode == 0, done.stderr[-3000:]
    seen = json.loads(done.stdout.strip().splitlines()[-1])
    assert seen["TF_CPU_ALLOCATOR_USE_BFC"] == (user_value or "true")
    assert seen["TF_CPP_MIN_LOG_LEVEL"] == "2"


def test_entry_points_set_only_what_the_user_left_unset(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("TF_CPU_ALLOCATOR_USE_BFC", raising=False)
    monkeypatch.setenv("TF_CPP_MIN_LOG_LEVEL", "0")
    assert tensorflow_env() == {"TF_CPP_MIN_LOG_LEVEL": "0", "TF_CPU_ALLOCATOR_USE_BFC": "true"}
    apply_tensorflow_env()
    assert os.environ["TF_CPU_ALLOCATOR_USE_BFC"] == TENSORFLOW_ENV["TF_CPU_ALLOCATOR_USE_BFC"]
    assert os.environ["TF_CPP_MIN_LOG_LEVEL"] == "0"


def test_a_command_runs_with_the_pooled_allocator(severstal_sample: Path) -> None:
    # data.bench's JSON names the allocator it measured under: the one run_cli set.
    env = {k: v for k, v in python_env().items() if k != "TF_CPU_ALLOCATOR_USE_BFC"}
    done = run_python(
        "-m",
        "data.bench",
        f"root={severstal_sample}",
        "seconds=0.2",
        "batch_size=2",
        env=env,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    report = json.loads(done.stdout.strip().splitlines()[-1])
    assert report["tf_cpu_allocator_use_bfc"] == "true"
