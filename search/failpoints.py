"""Named failpoints for fault-injection tests: `STEELSEG_FAILPOINT=name` makes the process
SIGKILL itself when it reaches `failpoint("name")`, the way a power cut or the OOM killer
would, with no cleanup and no exception handler run. Unset, a failpoint costs one lookup."""

from __future__ import annotations

import os
import signal

__all__ = ["ENV", "failpoint"]

ENV = "STEELSEG_FAILPOINT"


def failpoint(name: str) -> None:
    if os.environ.get(ENV) == name:
        os.kill(os.getpid(), signal.SIGKILL)
