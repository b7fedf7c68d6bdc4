"""A local Ray as the search starts it: token auth on, nothing served beyond 127.0.0.1."""

from __future__ import annotations

import json
from pathlib import Path

from cli_checks import python_env, run_python

ROOT = Path(__file__).resolve().parents[2]

PROBE = r"""
import glob, json, os, types
from search.sweep import runner

runner._init_ray(types.SimpleNamespace(cluster={"num_cpus": 1}, runtime_env={}))
import ray
from ray._raylet import AuthenticationMode, get_authentication_mode

def cmdlines():
    for path in glob.glob("/proc/[0-9]*/cmdline"):
        try:
            yield open(path, "rb").read().decode(errors="replace").split("\0")
        except OSError:
            pass

hosts = sorted({
    arg.split("=", 1)[1]
    for args in cmdlines()
    if any("dashboard" in a for a in args) and ray._private.worker.global_worker.node.get_session_dir_path() in " ".join(args)
    for arg in args
    if arg.startswith("--host=")
})
info = ray._private.worker.global_worker.node.address_info
print(json.dumps({
    "token": get_authentication_mode() == AuthenticationMode.TOKEN,
    "env": os.environ.get("RAY_AUTH_MODE"),
    "dashboard_hosts": hosts,
    "webui_url": info.get("webui_url"),
}))
ray.shutdown()
"""


def test_local_ray_keeps_token_auth_and_binds_to_localhost() -> None:
    env = {k: v for k, v in python_env().items() if not k.startswith("RAY_")}
    done = run_python("-c", PROBE, env=env, timeout=180, cwd=ROOT)
    assert done.returncode == 0, done.stderr[-2000:]
    facts = json.loads(done.stdout.strip().splitlines()[-1])
    assert facts["token"] and facts["env"] == "token"
    assert facts["dashboard_hosts"] == ["127.0.0.1"]  # the job server's minimal dashboard
    assert not facts["webui_url"]  # the dashboard UI itself is off
