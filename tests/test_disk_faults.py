"""A full or unwritable results disk: one clear line naming the file, nothing half written
left where a reader would take it for a finished file."""

from __future__ import annotations

import resource
import signal
import subprocess
from pathlib import Path

from cli_checks import run_python

PROJECT = Path(__file__).resolve().parents[1]


def full_disk(limit_bytes: int):
    """preexec_fn: files of this process may not grow past limit_bytes (EFBIG, as ENOSPC)."""

    def limit() -> None:
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # the write fails instead of killing
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit_bytes, limit_bytes))

    return limit


def run(module: str, *argv: str, preexec=None) -> subprocess.CompletedProcess:
    return run_python("-m", module, *argv, timeout=300, preexec_fn=preexec)


def test_prepare_on_a_full_disk_names_the_file_and_leaves_no_manifest(tmp_path: Path) -> None:
    out = tmp_path / "shards"
    argv = ["dataset=synthetic", "dataset.num_images=64", f"out={out}", "shard_bytes=200000"]
    done = run("data.prepare", *argv, preexec=full_disk(20_000))
    assert done.returncode == 1, done.stderr[-2000:]
    errors = [line for line in done.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "File too large" in errors[0] and str(out) in errors[0], errors
    # The manifest is written last: without it the shards are not a dataset anyone reads.
    assert not (out / "manifest.json").exists()
    again = run("data.prepare", *argv)  # the disk has room again: the same command completes
    assert again.returncode == 0, again.stderr[-2000:]
    assert (out / "manifest.json").is_file()


def test_search_on_an_unwritable_results_dir_says_so_before_anything_runs() -> None:
    # /sys refuses new folders here, as a read-only mount would.
    done = run("search.run", "results_dir=/sys/steelseg-results", "console_interval_s=0")
    assert done.returncode == 1, done.stderr[-2000:]
    errors = [line for line in done.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "/sys/steelseg-results" in errors[0], done.stderr[-2000:]
    assert not Path("/sys/steelseg-results").exists()
