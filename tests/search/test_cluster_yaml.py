"""cluster.yaml, and docs/cluster.md's on-prem variant, pass Ray's own cluster-config validation."""

from __future__ import annotations

import copy
import re
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml
from ray.autoscaler._private.util import prepare_config, validate_config

ROOT = Path(__file__).resolve().parents[2]


def validated(config: dict[str, Any]) -> dict[str, Any]:
    """What `ray up` does before touching a cloud: fill in defaults, then schema-check."""
    full = prepare_config(copy.deepcopy(config))
    validate_config(full)
    return full


@pytest.fixture(scope="module")
def cluster() -> dict[str, Any]:
    return yaml.safe_load((ROOT / "cluster.yaml").read_text())


def test_cluster_yaml_passes_ray_validation(cluster: dict[str, Any]) -> None:
    full = validated(cluster)
    assert full["provider"]["type"] == "aws"
    assert full["head_node_type"] in full["available_node_types"]


def test_head_runs_no_trials_and_workers_have_gpus(cluster: dict[str, Any]) -> None:
    head = cluster["available_node_types"][cluster["head_node_type"]]
    assert head["resources"]["CPU"] == 0
    assert any("--num-cpus=0" in command for command in cluster["head_start_ray_commands"])
    workers = {
        name: node
        for name, node in cluster["available_node_types"].items()
        if name != cluster["head_node_type"]
    }
    assert workers, "cluster.yaml declares no worker node type"
    for name, node in workers.items():
        # g*/p* instance families are AWS's GPU machines.
        assert re.match(r"^[gp]\d", node["node_config"]["InstanceType"]), name
        assert node["max_workers"] >= 1


def test_every_node_mounts_shared_storage_and_installs_the_gpu_extra(
    cluster: dict[str, Any],
) -> None:
    host = " ".join(cluster["initialization_commands"])  # on the host, before Docker starts
    assert "/mnt/steelseg" in host and "mount -t nfs4" in host
    assert any(
        "--volume /mnt/steelseg:/mnt/steelseg" in o for o in cluster["docker"]["run_options"]
    )
    assert "[gpu]" in " ".join(cluster["worker_setup_commands"])
    # The head submits jobs and runs the autoscaler: Ray's job server and boto3.
    assert "[cpu,cluster]" in " ".join(cluster["head_setup_commands"])
    assert cluster["file_mounts"] == {"~/steelseg": "."}


def test_images_pin_python_311_and_the_projects_ray(cluster: dict[str, Any]) -> None:
    import tomllib

    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert project["requires-python"] == ">=3.11"
    ray_pin = next(d for d in project["dependencies"] if d.startswith("ray[tune]"))
    upper = re.search(r"<(\d+)\.(\d+)", ray_pin).groups()
    for key, flavour in (("head_image", "cpu"), ("worker_image", "gpu")):
        image = cluster["docker"][key]
        found = re.fullmatch(r"rayproject/ray:(\d+)\.(\d+)\.\d+-py3(\d+)-(\w+)", image)
        assert found, f"docker.{key}={image!r}: expected a pinned rayproject/ray tag"
        major, minor, python, kind = found.groups()
        assert int(python) >= 11 and kind == flavour, image
        assert (int(major), int(minor)) < tuple(int(x) for x in upper), f"{image} vs {ray_pin}"
    for name, node in cluster["available_node_types"].items():
        # Ray's own default would be an Ubuntu 18.04 Deep Learning AMI.
        assert node["node_config"]["ImageId"].startswith("resolve:ssm:/aws/service/"), name
    extras = project["optional-dependencies"]
    assert any(d.startswith("ray[default]") for d in extras["cluster"])
    assert any(d.startswith("boto3") for d in extras["cluster"])


def test_a_misspelt_key_is_rejected(cluster: dict[str, Any]) -> None:
    broken = copy.deepcopy(cluster)
    broken["max_worker"] = broken.pop("max_workers")
    with pytest.raises(jsonschema.ValidationError, match="max_worker"):
        validated(broken)


def test_docs_on_prem_variant_passes_ray_validation() -> None:
    page = (ROOT / "docs" / "cluster.md").read_text()
    blocks = re.findall(r"```yaml\n(# on-prem cluster.*?)```", page, flags=re.DOTALL)
    assert len(blocks) == 1, "docs/cluster.md must hold exactly one '# on-prem cluster' yaml block"
    config = yaml.safe_load(blocks[0])
    full = validated(config)
    assert full["provider"]["type"] == "local"
    assert full["provider"]["worker_ips"], "the on-prem variant lists no worker machines"


CREDENTIAL_KEYS = re.compile(
    r"(access_key|secret|password|passwd|token|api_key|credential|private_key_data)", re.I
)


def _keys(node: Any, path: str = "") -> list[tuple[str, Any]]:
    if isinstance(node, dict):
        return [
            kv for k, v in node.items() for kv in [(f"{path}.{k}", v), *_keys(v, f"{path}.{k}")]
        ]
    if isinstance(node, list):
        return [kv for i, v in enumerate(node) for kv in _keys(v, f"{path}[{i}]")]
    return []


def test_cluster_yaml_carries_no_credentials(cluster: dict[str, Any]) -> None:
    # Credentials come from the launching machine (AWS: its profile or environment; SSH:
    # Ray's generated key pair), never from this committed file.
    leaks = [path for path, _ in _keys(cluster) if CREDENTIAL_KEYS.search(path.rsplit(".", 1)[-1])]
    assert leaks == []
    text = (ROOT / "cluster.yaml").read_text()
    assert not re.search(r"AKIA[0-9A-Z]{16}", text)  # an AWS access key id
    assert "BEGIN" not in text or "PRIVATE KEY" not in text
    assert "ssh_private_key" not in cluster.get("auth", {})
