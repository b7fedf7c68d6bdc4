"""Peak resident memory of this process, for the figures commands record about themselves."""

from __future__ import annotations

import resource
import sys
from pathlib import Path

__all__ = ["peak_rss_mib"]


def peak_rss_mib() -> float:
    """This process's peak resident memory so far, in MiB.

    On Linux, VmHWM of /proc/self/status: the high-water mark of this program's own memory.
    Not `ru_maxrss`, which a spawned child inherits from the parent it was forked from (the
    kernel keeps the pre-exec peak), so a NumPy worker started by a 700 MiB driver would
    report 700 MiB. Elsewhere, `ru_maxrss` (KiB on Linux, bytes on macOS).
    """
    status = Path("/proc/self/status")
    if status.exists():
        for line in status.read_text().splitlines():
            if line.startswith("VmHWM:"):
                return round(int(line.split()[1]) / 1024, 1)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return round(peak / (1024 * 1024 if sys.platform == "darwin" else 1024), 1)
