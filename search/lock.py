"""One live command per experiment: a lock file in `results/<experiment>/` naming its holder.

`search.run`, `search.promote` and `search.report` hold `results/<experiment>/.lock.json`
while they run. It names the host, the pid, the command and the start time, and carries a
heartbeat the holder rewrites every `HEARTBEAT_S` seconds. A second command on a held
experiment stops at once with one line naming the holder and the way out.

A lock is stale, and is taken over with a warning, when its pid is gone on this host or its
heartbeat is older than `stale_after_s` (any host: the cluster case, several users launching
into one shared `results_dir`).

Every step is atomic on a local or network file system (POSIX, NFS): the lock is created by
`os.link` of a fully written temporary file (fails if the lock exists, never half-written),
heartbeats replace it by `os.replace` after checking it is still ours, and a stale lock is
taken over by renaming it aside first, so of two processes that both judged it stale only
one moves it.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import sys
import threading
import time
import uuid
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from data.config import ConfigError

__all__ = [
    "DEFAULT_STALE_S",
    "HEARTBEAT_S",
    "LOCK_NAME",
    "ExperimentLock",
    "ExperimentLocked",
    "Holder",
    "read_holder",
]

LOCK_NAME = ".lock.json"
HEARTBEAT_S = 10.0
DEFAULT_STALE_S = 60.0


class ExperimentLocked(ConfigError):
    """Another live command holds the experiment."""


@dataclass(frozen=True)
class Holder:
    host: str
    pid: int
    command: str
    started: str  # ISO 8601, UTC
    heartbeat: float  # time.time() of the last beat
    token: str  # unique per acquisition: tells our lock from a successor's

    def describe(self, now: float) -> str:
        return (
            f"{self.command} (pid {self.pid} on {self.host}, started {self.started}, "
            f"last heartbeat {max(0.0, now - self.heartbeat):.0f} s ago)"
        )


def read_holder(path: Path) -> Holder | None:
    """The lock's holder; None if there is no lock. An unreadable lock raises ConfigError."""
    try:
        text = path.read_text()
    except FileNotFoundError:
        return None
    try:
        data = json.loads(text)
        return Holder(
            host=str(data["host"]),
            pid=int(data["pid"]),
            command=str(data["command"]),
            started=str(data["started"]),
            heartbeat=float(data["heartbeat"]),
            token=str(data["token"]),
        )
    except (ValueError, KeyError, TypeError) as exc:
        raise ConfigError(
            f"{path}: unreadable experiment lock ({type(exc).__name__}: {exc}); no command of "
            "this project writes one like it. If no command is running on this experiment, "
            "delete the file"
        ) from None


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's live process
        return True
    return True


def stale_reason(holder: Holder, *, now: float, stale_after_s: float, host: str) -> str | None:
    """Why the holder is dead, or None while it may be alive."""
    if holder.host == host and not _pid_alive(holder.pid):
        return f"pid {holder.pid} is gone on {host}"
    age = now - holder.heartbeat
    if age > stale_after_s:
        return f"its heartbeat is {age:.0f} s old (limit {stale_after_s:g} s)"
    return None


class ExperimentLock:
    """Context manager: hold `experiment_dir`'s lock for the duration of a command."""

    def __init__(
        self,
        experiment_dir: str | Path,
        *,
        command: str,
        stale_after_s: float = DEFAULT_STALE_S,
        heartbeat_s: float = HEARTBEAT_S,
    ) -> None:
        if not stale_after_s > heartbeat_s > 0:
            raise ConfigError(
                f"lock_stale_s={stale_after_s}: expected a number of seconds above the "
                f"heartbeat interval ({heartbeat_s:g} s)"
            )
        self.path = Path(experiment_dir) / LOCK_NAME
        self.command = command
        self.stale_after_s = float(stale_after_s)
        self.heartbeat_s = float(heartbeat_s)
        self.host = socket.gethostname()
        self.token = uuid.uuid4().hex
        self.lost = False  # set if a heartbeat finds the lock is no longer ours
        self._started = datetime.now(UTC).isoformat(timespec="seconds")
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    # --- the file ------------------------------------------------------------------------------

    def _holder(self, now: float) -> Holder:
        return Holder(
            host=self.host,
            pid=os.getpid(),
            command=self.command,
            started=self._started,
            heartbeat=now,
            token=self.token,
        )

    def _temporary(self, now: float) -> Path:
        tmp = self.path.with_name(f"{LOCK_NAME}.{self.token}.{time.monotonic_ns()}.tmp")
        with tmp.open("w") as handle:
            json.dump(asdict(self._holder(now)), handle)
            handle.flush()
            os.fsync(handle.fileno())
        return tmp

    def _create(self) -> bool:
        tmp = self._temporary(time.time())
        try:
            os.link(tmp, self.path)
            return True
        except FileExistsError:
            return False
        finally:
            tmp.unlink(missing_ok=True)

    def _take_over(self, stale: Holder) -> bool:
        """Move the stale lock aside; False if another process moved or replaced it first."""
        aside = self.path.with_name(f"{LOCK_NAME}.stale.{self.token}")
        try:
            os.rename(self.path, aside)
        except FileNotFoundError:
            return False
        try:
            moved = read_holder(aside)
        except ConfigError:
            moved = None
        if moved is None or moved.token != stale.token:
            # A successor's fresh lock was moved by mistake: put it back if its place is free.
            with contextlib.suppress(FileExistsError):
                os.link(aside, self.path)
        aside.unlink(missing_ok=True)
        return moved is not None and moved.token == stale.token

    # --- acquire / release ---------------------------------------------------------------------

    def acquire(self) -> ExperimentLock:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        for _ in range(50):
            if self._create():
                self._start_heartbeat()
                return self
            holder = read_holder(self.path)
            if holder is None:
                continue  # released between our attempt and the read
            now = time.time()
            reason = stale_reason(holder, now=now, stale_after_s=self.stale_after_s, host=self.host)
            if reason is None:
                raise ExperimentLocked(
                    f"{self.path.parent} is in use by {holder.describe(now)}. Wait for it to "
                    "finish, or choose another experiment=NAME"
                )
            if self._take_over(holder):
                print(
                    f"warning: took over the lock on {self.path.parent} from "
                    f"{holder.describe(now)}: {reason}",
                    file=sys.stderr,
                    flush=True,
                )
        raise ExperimentLocked(f"{self.path}: could not take the lock after 50 attempts")

    def _start_heartbeat(self) -> None:
        self._stop.clear()
        self._thread = threading.Thread(target=self._beat, name="experiment-lock", daemon=True)
        self._thread.start()

    def _beat(self) -> None:
        while not self._stop.wait(self.heartbeat_s):
            if not self._owned():
                self.lost = True
                print(
                    f"warning: the lock on {self.path.parent} is no longer this command's "
                    "(taken over after a stall?); another command may be writing there",
                    file=sys.stderr,
                    flush=True,
                )
                return
            tmp = self._temporary(time.time())
            os.replace(tmp, self.path)

    def _owned(self) -> bool:
        try:
            holder = read_holder(self.path)
        except ConfigError:
            return False
        return holder is not None and holder.token == self.token

    def release(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
            self._thread = None
        if self._owned():
            self.path.unlink(missing_ok=True)

    def __enter__(self) -> ExperimentLock:
        return self.acquire()

    def __exit__(self, *exc: Any) -> None:
        self.release()
