"""A two-node Ray cluster on this machine: the search joins it through cluster.address."""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
import ray_cluster as rc
from ray_cluster import AUTH, PROJECT, TINY_SEARCH

TINY = [*TINY_SEARCH, "space.models.unet.grid.filters=[4]"]


@pytest.fixture
def two_node_cluster() -> Iterator[str]:
    # A short temp dir: Ray's unix socket paths must stay under ~100 characters.
    temp = tempfile.mkdtemp(prefix="rt2n-", dir="/tmp")
    (port, client) = rc.free_ports(2)
    env = {**os.environ, "PYTHONPATH": str(PROJECT), "TF_CPP_MIN_LOG_LEVEL": "3", **AUTH}
    try:
        rc.ray_start(
            *rc.head_flags(port, temp, client),
            "--include-dashboard=false",
            env=env,
        )
        rc.ray_start(f"--address=127.0.0.1:{port}", env=env)
        yield f"127.0.0.1:{port}"
    finally:
        rc.stop(temp)
        assert not rc.processes_under(temp), "Ray processes of the test cluster are still running"


def _trial_runs(rows: list[dict[str, str]], experiment_dir: Path) -> list[dict]:
    """Per trial: its node, GPU ids and [start, end] of its run, from its result.json."""
    runs = []
    for row in rows:
        trial_dir = (experiment_dir / row["checkpoint"]).parent
        results = [json.loads(x) for x in (trial_dir / "result.json").read_text().splitlines()]
        runs.append(
            {
                "node": results[-1]["node_id"],
                "gpus": results[-1]["gpu_ids"],
                "start": results[0]["trial_started"],
                "end": results[-1]["timestamp"],
            }
        )
    return runs


@pytest.mark.slow
def test_search_joins_a_two_node_cluster_and_packs_half_gpus(tmp_path, two_node_cluster):
    done = rc.run_search(
        tmp_path,
        "space=unet",
        "experiment=cluster",
        "cluster=address",
        f"cluster.address={two_node_cluster}",
        "cluster.cpus_per_trial=0.5",
        "cluster.gpus_per_trial=0.5",
        *TINY,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    rows = rc.read_leaderboard(tmp_path / "cluster")
    assert len(rows) == 4 and {r["status"] for r in rows} == {"TERMINATED"}
    runs = _trial_runs(rows, tmp_path / "cluster")
    nodes = {run["node"] for run in runs}
    assert len(nodes) == 2, f"trials ran on {len(nodes)} node(s): {runs}"
    for node in nodes:
        here = [run for run in runs if run["node"] == node]
        # Two 0.5-GPU trials share the node's one logical GPU, at the same time.
        assert len(here) == 2 and {run["gpus"] for run in here} == {"0"}, here
        assert max(r["start"] for r in here) < min(r["end"] for r in here), here
