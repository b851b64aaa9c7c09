"""A Ray cluster with the real autoscaler and Ray's fake multi-node provider, on this machine.

Worker nodes are extra raylets launched by the autoscaler itself when demand needs their node
type, and terminated after the idle timeout. Unlike ``ray.cluster_utils.AutoscalingCluster``
(whose ``start``/``shutdown`` run ``ray stop --force``, ending every Ray process on the machine),
this head runs on its own port and temp dir, and ``stop`` ends only the processes of this
cluster's session. Facts this relies on (Ray 2.60): the provider needs ``RAY_FAKE_CLUSTER=1`` in
the head's environment, ``gcs_address`` pointing at the head on loopback, and the head started
with ``--node-ip-address=127.0.0.1``.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

HEAD_TYPE = "ray.head.default"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def cluster_config(*, port: int, head_cpus: int, worker_types: dict[str, Any], idle_timeout_minutes: float) -> dict:
    return {
        "cluster_name": f"fake-{port}",
        "max_workers": sum(t.get("max_workers", 1) for t in worker_types.values()),
        "upscaling_speed": 1.0,
        "idle_timeout_minutes": idle_timeout_minutes,
        "docker": {},
        "provider": {
            "type": "fake_multinode",
            "use_node_id_as_ip": True,
            "disable_node_updaters": True,
            "disable_launch_config_check": True,
            "gcs_address": f"127.0.0.1:{port}",
        },
        "auth": {"ssh_user": "ubuntu"},
        "available_node_types": {
            HEAD_TYPE: {"resources": {"CPU": head_cpus}, "node_config": {}, "max_workers": 0},
            **worker_types,
        },
        "head_node_type": HEAD_TYPE,
        "file_mounts": {},
        "cluster_synced_files": [],
        "file_mounts_sync_continuously": False,
        "rsync_exclude": [],
        "rsync_filter": [],
        "initialization_commands": [],
        "setup_commands": [],
        "head_setup_commands": [],
        "worker_setup_commands": [],
        "head_start_ray_commands": [],
        "worker_start_ray_commands": [],
    }


class FakeCluster:
    def __init__(self, *, head_cpus: int, worker_types: dict[str, Any], idle_timeout_minutes: float = 0.2) -> None:
        self.port = free_port()
        self.temp_dir = tempfile.mkdtemp(prefix="ssw-fake-", dir="/tmp")
        self.config = cluster_config(
            port=self.port, head_cpus=head_cpus, worker_types=worker_types, idle_timeout_minutes=idle_timeout_minutes
        )
        self.address = f"127.0.0.1:{self.port}"

    def start(self) -> None:
        path = Path(self.temp_dir) / "autoscaler.json"
        path.write_text(json.dumps(self.config))
        # Token auth (on by default since Ray 2.60) off: a local test cluster on loopback.
        env = {**os.environ, "RAY_FAKE_CLUSTER": "1", "AUTOSCALER_UPDATE_INTERVAL_S": "1", "RAY_AUTH_MODE": "disabled"}
        env.pop("RAY_ADDRESS", None)
        ray = str(Path(sys.executable).parent / "ray")
        subprocess.run(
            [
                ray, "start", "--head", f"--port={self.port}", "--node-ip-address=127.0.0.1",
                f"--temp-dir={self.temp_dir}", f"--num-cpus={self.config['available_node_types'][HEAD_TYPE]['resources']['CPU']}",
                f"--autoscaling-config={path}", "--include-dashboard=false", "--disable-usage-stats",
                f"--ray-client-server-port={free_port()}",
            ],
            check=True, env=env, capture_output=True, timeout=120,
        )  # fmt: skip

    def processes(self) -> list[int]:
        """Pids of every process of this cluster: their command lines name its temp dir or port."""
        pids = []
        marks = (self.temp_dir, f"127.0.0.1:{self.port}", f"--gcs-address=127.0.0.1:{self.port}")
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit() or int(entry.name) == os.getpid():
                continue
            try:
                command = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            except OSError:
                continue
            if any(mark in command for mark in marks):
                pids.append(int(entry.name))
        return pids

    def raylet_of(self, node_ip_or_id: str) -> list[int]:
        """Pids of the raylet (and its workers) of one fake worker node, by node id."""
        pids = []
        for pid in self.processes():
            try:
                command = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
                environ = Path(f"/proc/{pid}/environ").read_bytes().decode(errors="replace")
            except OSError:
                continue
            if node_ip_or_id in command or f"RAY_OVERRIDE_NODE_ID_FOR_TESTING={node_ip_or_id}" in environ:
                pids.append(pid)
        return pids

    def stop(self) -> None:
        for sig in (signal.SIGTERM, signal.SIGKILL):
            for pid in self.processes():
                try:
                    os.kill(pid, sig)
                except ProcessLookupError:
                    pass
            deadline = time.monotonic() + 10
            while self.processes() and time.monotonic() < deadline:
                time.sleep(0.2)
