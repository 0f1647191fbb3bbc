"""Joining a Ray cluster for `racer train --ray [ADDRESS]` (`trainer.ray_workers` plays
the episodes on it): `auto` joins the cluster this machine is part of (`ray start` ran
here), or starts a local single-machine Ray (no dashboard, a small object store,
`num_cpus` given) when there is none; `HOST:PORT` (or `ray://HOST:PORT`) joins the
cluster whose head listens there, refused at once with the fix when nothing answers.

Ray is imported only inside these functions: nothing else needs it.
"""

from __future__ import annotations

import logging
import os
import socket
from typing import Any

from trainer.errors import RolloutError

LOCAL_OBJECT_STORE_BYTES = 256 * 1024**2
"""Object store of a local single-machine Ray started by `connect("auto")` (episodes pass
through it on their way to the learner; Ray spills to disk beyond it)."""
CONNECT_TIMEOUT_S = 10.0
"""How long the head's address may take to answer a TCP connection."""


def connect(address: str, workers: int) -> str:
    """Join the Ray cluster at `address` (see the module docstring); a one-line description
    of what was joined. Already connected (a test, a notebook): that connection is kept."""
    import ray

    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    quiet = {"logging_level": logging.WARNING, "log_to_driver": False}
    if ray.is_initialized():
        return _describe_cluster(ray, "the Ray cluster this process is connected to")
    if address == "auto":
        try:
            ray.init(address="auto", **quiet)  # type: ignore[arg-type]
            return _describe_cluster(ray, "the Ray cluster this machine joined")
        except ConnectionError:
            pass  # no cluster here: a local one
        start_local(workers)
        return _describe_cluster(ray, "a local single-machine Ray (no cluster found)")
    try:
        if not address.startswith("ray://"):
            host, port = address.rsplit(":", 1)
            # Refused at once, rather than after Ray's own retries (a minute or more).
            socket.create_connection((host, int(port)), timeout=CONNECT_TIMEOUT_S).close()
        ray.init(address=address, **quiet)  # type: ignore[arg-type]
    except Exception as exc:
        raise RolloutError(
            f"--ray {address}: could not join a Ray cluster there ({_first_line(exc)}); "
            "start its head with `ray start --head --port 6379` (README, Training across "
            "machines), give its address as HOST:PORT, or use --ray auto on a machine that "
            "joined it"
        ) from exc
    return _describe_cluster(ray, f"the Ray cluster at {address}")


def start_local(cpus: int) -> None:
    """Start a single-machine Ray in this process with `cpus` CPUs (no dashboard, a small
    object store)."""
    import ray

    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    ray.init(
        num_cpus=cpus,
        include_dashboard=False,
        object_store_memory=LOCAL_OBJECT_STORE_BYTES,
        logging_level=logging.WARNING,
        log_to_driver=False,
    )


def _describe_cluster(ray: Any, what: str) -> str:
    nodes = [n for n in ray.nodes() if n.get("Alive")]
    total = ray.cluster_resources()
    gpus = f", {total['GPU']:g} GPUs" if total.get("GPU") else ""
    return f"{what}: {len(nodes)} nodes, {total.get('CPU', 0):g} CPUs{gpus}"


def connected() -> bool:
    """This process is connected to a Ray cluster."""
    import ray

    return bool(ray.is_initialized())


def disconnect() -> None:
    """Leave the Ray cluster (stops a local Ray this process started)."""
    import ray

    if ray.is_initialized():
        ray.shutdown()


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__
