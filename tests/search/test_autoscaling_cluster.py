"""A simulated autoscaling cluster: Ray's own fake multi-node provider, a head that runs
nothing, and a GPU worker type the autoscaler starts as trials queue.

This stands in for `cluster.yaml` on AWS, which tests cannot have: the head declares `CPU: 0`
(as `cluster.yaml`'s head does), workers declare fake GPUs, and the search joins through its
public entry point (`python -m search.run cluster=address`). Ray's `AutoscalingCluster` reads
an example config that its wheel does not ship, so the head is started here the way it
starts one (`ray start --head --autoscaling-config=...` with `RAY_FAKE_CLUSTER=1`), with this
test's own config, ports and temp dir, and stopped by that temp dir alone.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
import ray_cluster as rc
from ray_cluster import AUTH, PROJECT, TINY_SEARCH

WORKER_CPUS, WORKER_GPUS = 2, 2  # each fake GPU worker node declares these


def _fake_cluster_config(gcs: str) -> dict:
    """Ray's fake multi-node provider: worker nodes are local processes it starts and stops."""
    return {
        "cluster_name": "steelseg-test",
        "max_workers": 2,
        "provider": {
            "type": "fake_multinode",
            "use_node_id_as_ip": True,
            "disable_node_updaters": True,
            "disable_launch_config_check": True,
            "gcs_address": gcs,
        },
        "available_node_types": {
            "ray.head.default": {"resources": {"CPU": 0}, "node_config": {}, "max_workers": 0},
            "gpu_worker": {
                "resources": {
                    "CPU": WORKER_CPUS,
                    "GPU": WORKER_GPUS,
                    "object_store_memory": 200 * 2**20,
                },
                "node_config": {},
                "min_workers": 0,
                "max_workers": 2,
            },
        },
        "head_node_type": "ray.head.default",
        "auth": {},
        "upscaling_speed": 1.0,
        "idle_timeout_minutes": 5,
        "docker": {},
        "initialization_commands": [],
        "setup_commands": [],
        "head_setup_commands": [],
        "worker_setup_commands": [],
        "head_start_ray_commands": [],
        "worker_start_ray_commands": [],
        "file_mounts": {},
        "cluster_synced_files": [],
        "file_mounts_sync_continuously": False,
        "rsync_exclude": [],
        "rsync_filter": [],
    }


@pytest.fixture
def autoscaling_cluster() -> Iterator[str]:
    temp = tempfile.mkdtemp(prefix="rtas-", dir="/tmp")  # short: Ray's socket paths
    port, client = rc.free_ports(2)
    gcs = f"127.0.0.1:{port}"
    config = Path(temp) / "autoscaling.json"
    config.write_text(json.dumps(_fake_cluster_config(gcs)))
    env = {
        **os.environ,
        "PYTHONPATH": str(PROJECT),
        "TF_CPP_MIN_LOG_LEVEL": "3",
        "RAY_FAKE_CLUSTER": "1",
        "AUTOSCALER_UPDATE_INTERVAL_S": "1",
        **AUTH,
    }
    try:
        rc.ray_start(
            *rc.head_flags(port, temp, client),
            f"--autoscaling-config={config}",
            "--include-dashboard=false",
            env=env,
            cpus=0,
            gpus=0,
        )
        yield gcs
    finally:
        rc.stop(temp)
        assert not rc.processes_under(temp), "Ray processes of the test cluster are still running"


@pytest.mark.slow
def test_search_on_an_autoscaling_cluster_lands_on_workers_within_their_gpus(
    tmp_path: Path, autoscaling_cluster: str
) -> None:
    # Four trials: two filters-4 U-Nets at a whole GPU each, two filters-8 at half a GPU (the
    # per-model share): 3 GPUs in all, more than one worker's 2, so a second worker is needed
    # once the first is full, and the head (CPU 0) can run none.
    done = rc.run_search(
        tmp_path,
        "space=unet",
        "experiment=autoscale",
        "cluster=address",
        f"cluster.address={autoscaling_cluster}",
        "cluster.cpus_per_trial=0.5",
        "cluster.gpus_per_trial=1",
        "+space.models.unet.resources={by_filters: {8: {gpus: 0.5}}}",
        "space.models.unet.grid.filters=[4,8]",
        "space.models.unet.grid.activation=[relu,leaky_relu]",
        "space.models.unet.grid.loss=[bce]",
        *TINY_SEARCH,
        timeout=900,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    folder = tmp_path / "autoscale"
    rows = rc.read_leaderboard(folder)
    assert len(rows) == 4 and {r["status"] for r in rows} == {"TERMINATED"}, rows
    runs = []
    for row in rows:
        lines = ((folder / row["checkpoint"]).parent / "result.json").read_text().splitlines()
        last = json.loads(lines[-1])
        runs.append({"filters": int(row["filters"]), **last, "start": json.loads(lines[0])})
    nodes = _cluster_nodes(autoscaling_cluster)
    workers = {n["id"] for n in nodes if n["resources"].get("GPU") == WORKER_GPUS}
    heads = [n for n in nodes if n["id"] not in workers]
    assert len(heads) == 1 and not heads[0]["resources"].get("CPU"), nodes
    # 1. The autoscaler started GPU workers (the cluster began with the head alone), and the
    #    trials ran on them only: the head, which declares no CPU, ran none.
    assert workers and {run["node_id"] for run in runs} <= workers, (runs, nodes)
    # 2. Per-model shares: a filters-4 trial holds a whole GPU, a filters-8 trial half of one,
    #    each on one GPU id...
    for run in runs:
        assert run["gpus"] == (1.0 if run["filters"] == 4 else 0.5), run
        assert len(run["gpu_ids"].split(",")) == 1, run
    #    ...and no node was given more GPU than it declares, at any moment.
    for node in {run["node_id"] for run in runs}:
        here = [run for run in runs if run["node_id"] == node]
        for run in here:
            at = run["start"]["trial_started"]
            used = sum(
                r["gpus"] for r in here if r["start"]["trial_started"] <= at < r["timestamp"]
            )
            assert used <= WORKER_GPUS, (node, here)


def _cluster_nodes(address: str) -> list[dict]:
    """Every node the cluster has had (alive or not), through a short-lived driver."""
    code = (
        "import json, sys, ray; ray.init(address=sys.argv[1], log_to_driver=False); "
        "print(json.dumps([{'id': n['NodeID'], 'alive': n['Alive'], "
        "'resources': n['Resources']} for n in ray.nodes()]))"
    )
    done = subprocess.run(
        [sys.executable, "-c", code, address],
        env={**os.environ, **AUTH},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    return json.loads(done.stdout.strip().splitlines()[-1])
