"""Running the project's commands from tests as a user runs them, and what every command
promises on bad input: exit code 2 and one `error: ...` line."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path

PROJECT = Path(__file__).resolve().parents[1]


def python_env(**extra: str) -> dict[str, str]:
    """This environment with TensorFlow's start-up lines quiet and the checkout importable."""
    return {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "PYTHONPATH": str(PROJECT), **extra}


def run_python(
    *args: str,
    env: Mapping[str, str] | None = None,
    timeout: float = 600,
    cwd: str | Path = PROJECT,
    preexec_fn=None,
) -> subprocess.CompletedProcess:
    """`python ARGS` (e.g. `-m search.run ...`) in the checkout: output captured as text, no
    standard input (as in CI), `python_env()` unless `env` is given whole."""
    return subprocess.run(
        [sys.executable, *args],
        cwd=cwd,
        env=dict(env) if env is not None else python_env(),
        capture_output=True,
        text=True,
        timeout=timeout,
        stdin=subprocess.DEVNULL,
        preexec_fn=preexec_fn,
    )


def one_error_line(done: subprocess.CompletedProcess) -> str:
    """The single `error:` line of a finished command that refused its input (exit code 2)."""
    output = done.stdout[-2000:] + done.stderr[-2000:]
    assert done.returncode == 2, output
    errors = [line for line in done.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1, output
    return errors[0]
