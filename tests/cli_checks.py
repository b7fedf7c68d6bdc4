"""What every command promises on bad input: exit code 2 and one `error: ...` line."""

from __future__ import annotations

import subprocess


def one_error_line(done: subprocess.CompletedProcess) -> str:
    """The single `error:` line of a finished command that refused its input (exit code 2)."""
    output = done.stdout[-2000:] + done.stderr[-2000:]
    assert done.returncode == 2, output
    errors = [line for line in done.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1, output
    return errors[0]
