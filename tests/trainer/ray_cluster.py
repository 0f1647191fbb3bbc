"""A real two-node Ray cluster on this machine for tests: a head and a second node, each
`ray start --block` in its own process (its own session and process group) with its own
CPUs, a small object store, no dashboard and a private temp dir, on loopback addresses
(Ray announces them under the machine's own address).

`stop_node` kills one node the way a machine dies (SIGKILL to its raylet and every process
it started); `stop` stops what is left and removes the temp dir. Only processes this
helper started are touched: each node's process tree, found from its `ray start` process,
and anything whose command line names this cluster's private temp dir. `ray stop` is
never used: it would stop every Ray on the machine, other people's included.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psutil
import ray

RAY = str(Path(sys.executable).with_name("ray"))
# Lost nodes are noticed in about a second instead of Ray's default of about half a minute.
SYSTEM_CONFIG = {
    "health_check_period_ms": 500,
    "health_check_timeout_ms": 500,
    "health_check_failure_threshold": 3,
}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Cluster:
    """A head node (`head_cpus`) and a second node (`node_cpus`) on this machine, with
    this process connected to it as the driver (`ray.init`)."""

    def __init__(self, head_cpus: int = 1, node_cpus: int = 1, timeout_s: float = 150.0):
        self.temp_dir = tempfile.mkdtemp(prefix="orray-", dir="/tmp")  # short: socket paths
        self.port = _free_port()
        self.address = f"127.0.0.1:{self.port}"
        self.nodes: dict[str, subprocess.Popen] = {}
        self._trees: dict[str, dict[int, psutil.Process]] = {}
        # Ray's token authentication off, as this driver has it (Ray reads the mode when it
        # is imported): a token file another Ray on the machine wrote (~/.ray/auth_token)
        # must not switch the nodes to it. The cluster lives for one test module.
        env = {**os.environ, "RAY_USAGE_STATS_ENABLED": "0", "RAY_AUTH_MODE": "disabled"}
        common = [
            "--block",
            "--node-ip-address=127.0.0.1",
            "--object-store-memory=100000000",
            f"--temp-dir={self.temp_dir}",
            "--disable-usage-stats",
        ]
        try:
            self._start(
                "head",
                [
                    "--head",
                    f"--port={self.port}",
                    f"--num-cpus={head_cpus}",
                    "--include-dashboard=false",
                    f"--system-config={json.dumps(SYSTEM_CONFIG)}",
                    *common,
                ],
                env,
            )
            self._wait(self._head_listens, timeout_s, "the head node to start")
            self._start(
                "second", [f"--address={self.address}", f"--num-cpus={node_cpus}", *common], env
            )
            ray.init(address=self.address, logging_level="WARNING", log_to_driver=False)
            self._wait(lambda: self.alive_nodes() >= 2, timeout_s, "the second node to join")
        except BaseException:
            self.stop()
            raise

    def _start(self, name: str, args: list[str], env: dict[str, str]) -> None:
        log = open(Path(self.temp_dir) / f"{name}.log", "w")  # noqa: SIM115 (closed with the process)
        self.nodes[name] = subprocess.Popen(
            [RAY, "start", *args],
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
            env=env,
        )
        log.close()

    def _wait(self, ready, timeout_s: float, what: str) -> None:
        end = time.time() + timeout_s
        while time.time() < end:
            for name, proc in self.nodes.items():
                if proc.poll() is not None:
                    log = (Path(self.temp_dir) / f"{name}.log").read_text()[-2000:]
                    raise RuntimeError(f"ray start ({name}) exited {proc.returncode}:\n{log}")
            if ready():
                return
            time.sleep(0.5)
        raise TimeoutError(f"waited {timeout_s:.0f} s for {what}")

    def _head_listens(self) -> bool:
        try:
            socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
            return True
        except OSError:
            return False

    @staticmethod
    def alive_nodes() -> int:
        """Nodes the cluster counts alive (this process is connected to it as a driver)."""
        return sum(1 for n in ray.nodes() if n.get("Alive"))

    def _tree(self, name: str) -> list[psutil.Process]:
        """Node `name`'s `ray start` process and everything it started (remembered: a
        killed parent's children are no longer found through it; psutil refuses to signal
        a pid that a new process reused)."""
        found = self._trees.setdefault(name, {})
        proc = self.nodes.get(name)
        if proc is not None:
            try:
                root = psutil.Process(proc.pid)
                for p in [root, *root.children(recursive=True)]:
                    found.setdefault(p.pid, p)
            except psutil.Error:
                pass
        return list(found.values())

    def stop_node(self, name: str) -> None:
        """Kill node `name` at once, as a machine that loses power: every process of it."""
        _kill(self._tree(name))
        proc = self.nodes.pop(name)
        proc.wait(timeout=30)

    def ours(self) -> list[psutil.Process]:
        """Processes still running that belong to this cluster (its temp dir in their
        command line, or in a node's tree)."""
        out = [p for tree in self._trees.values() for p in tree.values() if _running(p)]
        known = {p.pid for p in out}
        for p in psutil.process_iter(["pid", "cmdline"]):
            try:
                if p.pid not in known and _running(p):
                    if self.temp_dir in " ".join(p.info["cmdline"] or ()):
                        out.append(p)
            except psutil.Error:
                continue
        return out

    def stop(self) -> None:
        """Disconnect; stop every node left, then anything of this cluster still running;
        remove the temp dir."""
        if ray.is_initialized():
            ray.shutdown()
        for name in list(self.nodes):
            self.stop_node(name)  # nothing to keep: no need to wait for a graceful stop
        end = time.time() + 20
        while (left := self.ours()) and time.time() < end:
            _kill(left)
            time.sleep(0.5)
        shutil.rmtree(self.temp_dir, ignore_errors=True)


def _running(p: psutil.Process) -> bool:
    try:
        return p.is_running() and p.status() != psutil.STATUS_ZOMBIE
    except psutil.Error:
        return False


def _kill(procs: list[psutil.Process]) -> None:
    for p in procs:
        try:
            p.kill()
        except psutil.Error:
            pass
