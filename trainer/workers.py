"""Simulator worker processes: environments stepped in parallel, reset and stepped per slot.

PPO and evaluation see one flat list of environment *slots*. `EnvPool` spreads them over
`workers` processes (spawned, so no TensorFlow state is forked) with `envs_per_worker`
environments each; `LocalPool` keeps them in this process (evaluation, tests). Both
offer the same three calls:

- `reset_many([(slot, seed, options), ...]) -> {slot: (obs, info)}`
- `step_many({slot: action}) -> {slot: (obs, reward, terminated, truncated, info)}`
- `close()`

and one more for the policy being trained: `play_many(spec, items, on_done)` plays whole
episodes inside the simulator processes with a NumPy copy of the policy
(`trainer.actor`), one episode per process at a time, handing the next episode to
whichever process finishes first; episodes come back sorted by number. Every episode is
seeded from its number, so the result does not depend on which process played it. With a
`deadline`, `play_many` stops waiting when it passes: the processes still playing are
killed (a reward function hung where its time limit cannot reach must not outlive the
budget) and the pool is closed; the episodes finished so far come back.

`trainer.ray_workers.RayPool` offers the same `play_many` with the simulators as Ray
actors across machines (`make_pool(..., ray=ADDRESS)`, imported only then).

A reward function's error in a process comes back as the same `RewardFunctionError`
(naming the user's file and line); any other failure as a `RolloutError`.

Autoreset is **off** by design: an environment whose episode ended stays idle until the
trainer resets it with an explicit seed and start position. That is what lets an
iteration hold exactly DeepRacer's `num_episodes_between_training` whole episodes, and a
resumed run replay exactly the episodes an uninterrupted run would have played.

Episodes longer than `max_episode_steps` are truncated by Gymnasium's `TimeLimit`, which
`make_env` wraps around every environment: the one time limit of training and
evaluation. The `info` sent back is slimmed: `params` keeps its scalar keys and drops the per-step copies
of `waypoints` and the object lists, which would dominate the pipe traffic.
"""

from __future__ import annotations

import contextlib
import multiprocessing as mp
import os
import time
import traceback
from collections.abc import Iterator
from multiprocessing.connection import wait
from typing import Any

import numpy as np

from sim2real.errors import RewardFunctionError
from trainer.actor import ActorSpec
from trainer.episodes import Episode, EpisodeItem, play_episode
from trainer.errors import RolloutError

_DROP_PARAMS = {
    "waypoints",
    "objects_location",
    "objects_left_of_center",
    "objects_speed",
    "objects_heading",
    "objects_distance",
    "objects_distance_from_center",
    "closest_objects",
}


def slim_info(info: dict[str, Any]) -> dict[str, Any]:
    """`info` without the bulky per-step lists (see the module docstring)."""
    out = {k: v for k, v in info.items() if k not in ("params", "final_obs", "final_info")}
    params = info.get("params")
    if isinstance(params, dict):
        slim = {k: v for k, v in params.items() if k not in _DROP_PARAMS}
        waypoints = params.get("waypoints")
        closest = params.get("closest_waypoints")
        if waypoints and closest and "x" in params and "y" in params:
            # The simtrace's closest_waypoint: the nearer of the bracketing pair.
            car = np.array([params["x"], params["y"]], dtype=np.float64)
            dists = [np.hypot(*(np.asarray(waypoints[i], np.float64) - car)) for i in closest]
            slim["closest_waypoint"] = int(closest[int(np.argmin(dists))])
        out["params"] = slim
    return out


def make_env(env_id: str, env_kwargs: dict[str, Any], max_episode_steps: int | None = None) -> Any:
    """`gymnasium.make(env_id, **env_kwargs)` without the passive checker (tests run it),
    truncated after `max_episode_steps` steps by Gymnasium's `TimeLimit` when given."""
    import gymnasium as gym

    if env_id.startswith("openracer/"):
        import sim2real  # noqa: F401  (registers openracer/Race-v0)

        _import_env_module()
    return gym.make(
        env_id, max_episode_steps=max_episode_steps, disable_env_checker=True, **env_kwargs
    )


def _import_env_module() -> None:
    try:
        import sim2real.env  # noqa: F401
    except ImportError:
        pass


class _Slots:
    """The environments of one process, stepped in order."""

    def __init__(self, env_id: str, env_kwargs: dict[str, Any], n: int, max_steps: int):
        self.envs = [make_env(env_id, env_kwargs, max_steps) for _ in range(n)]

    def reset(self, items: list[tuple[int, int, dict[str, Any] | None]]) -> list[tuple]:
        out = []
        for i, seed, options in items:
            obs, info = self.envs[i].reset(seed=seed, options=options)
            out.append((i, np.asarray(obs, dtype=np.uint8), slim_info(info)))
        return out

    def step(self, items: list[tuple[int, Any]]) -> list[tuple]:
        out = []
        for i, action in items:
            obs, reward, terminated, truncated, info = self.envs[i].step(action)
            out.append(
                (
                    i,
                    np.asarray(obs, dtype=np.uint8),
                    float(reward),
                    bool(terminated),
                    bool(truncated),
                    slim_info(info),
                )
            )
        return out

    def play(self, spec: ActorSpec, item: EpisodeItem) -> Episode:
        return play_episode(self.envs[0], spec, item, slim_info)

    def close(self) -> None:
        for env in self.envs:
            env.close()


def _worker_main(conn: Any, env_id: str, env_kwargs: dict[str, Any], n: int, max_steps: int):
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    spec: ActorSpec | None = None
    try:
        slots = _Slots(env_id, env_kwargs, n, max_steps)
        conn.send(("ok", None))
    except BaseException as exc:  # report, then exit: the parent raises RolloutError
        conn.send(("error", _describe(exc)))
        return
    while True:
        try:
            cmd, payload = conn.recv()
        except EOFError:
            break
        if cmd == "close":
            slots.close()
            conn.send(("ok", None))
            break
        try:
            if cmd == "play":
                new_spec, item = payload
                spec = new_spec or spec
                assert spec is not None, "play before any policy was sent"
                result: Any = slots.play(spec, item)
            elif cmd == "reset":
                result = slots.reset(payload)
            else:
                result = slots.step(payload)
            conn.send(("ok", result))
        except RewardFunctionError as exc:
            conn.send(("reward_error", str(exc)))
        except BaseException as exc:
            conn.send(("error", _describe(exc)))


def _describe(exc: BaseException) -> str:
    if getattr(exc, "exit_code", None) is not None:
        return str(exc)
    return "".join(traceback.format_exception(exc)).strip()


BLAS_THREAD_VARIABLES = ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS")
"""What NumPy's BLAS reads for its thread count when it loads."""


@contextlib.contextmanager
def _one_blas_thread() -> Iterator[None]:
    """Processes spawned inside start NumPy's BLAS with one thread (unless the user set
    a count): each simulator process is one core's work, and the policy's matrix products
    with a thread per core in every process oversubscribe the machine, whose idle BLAS
    threads then spin; measured 12x slower on a loaded 2-core machine (`racer bench
    scale`). Ray gives its 1-CPU workers one thread too, so both pools compute alike."""
    saved = {k: os.environ.get(k) for k in BLAS_THREAD_VARIABLES}
    for key in BLAS_THREAD_VARIABLES:
        os.environ.setdefault(key, "1")
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


class LocalPool:
    """Environment slots in this process (same interface as `EnvPool`)."""

    def __init__(self, env_id: str, env_kwargs: dict[str, Any], num_envs: int, max_steps: int):
        self.num_envs = num_envs
        self._slots = _Slots(env_id, env_kwargs, num_envs, max_steps)

    def reset_many(self, items: list[tuple[int, int, dict[str, Any] | None]]) -> dict[int, tuple]:
        return {i: (obs, info) for i, obs, info in self._slots.reset(items)}

    def step_many(self, actions: dict[int, Any]) -> dict[int, tuple]:
        return {r[0]: r[1:] for r in self._slots.step(sorted(actions.items()))}

    def play_many(
        self,
        spec: ActorSpec,
        items: list[EpisodeItem],
        on_done: Any = None,
        deadline: float | None = None,
    ) -> list[Episode]:
        """Play `items` one after the other in this process (see the module docstring);
        `deadline` is for `EnvPool`'s signature: here the reward call's own limit holds."""
        done = []
        for item in items:
            done.append(self._slots.play(spec, item))
            if on_done is not None and on_done(done[-1]) is False:
                break
        return sorted(done, key=lambda e: e.index)

    def close(self) -> None:
        self._slots.close()

    def __enter__(self) -> LocalPool:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class EnvPool:
    """`workers` spawned processes with `envs_per_worker` environments each."""

    def __init__(
        self,
        env_id: str,
        env_kwargs: dict[str, Any],
        workers: int,
        envs_per_worker: int,
        max_steps: int,
    ):
        ctx = mp.get_context("spawn")
        self.num_envs = workers * envs_per_worker
        self._per = envs_per_worker
        self.killed: list[tuple[int, int, float]] = []
        """(worker, episode, seconds on it) of each process `play_many` killed at its
        deadline, for the stop reason."""
        self._conns = []
        self._procs = []
        with _one_blas_thread():
            for _ in range(workers):
                parent, child = ctx.Pipe()
                proc = ctx.Process(
                    target=_worker_main,
                    args=(child, env_id, env_kwargs, envs_per_worker, max_steps),
                    daemon=True,
                )
                proc.start()
                child.close()
                self._conns.append(parent)
                self._procs.append(proc)
        for w in range(workers):
            self._receive(w, "starting the simulator")

    def _receive(self, w: int, doing: str) -> Any:
        try:
            status, payload = self._conns[w].recv()
        except (EOFError, ConnectionError) as exc:
            code = self._procs[w].exitcode
            self.close()
            raise RolloutError(
                f"simulator worker {w} died while {doing} (exit code {code}); rerun with "
                "--workers 1 to see its error in this process"
            ) from exc
        if status == "reward_error":
            self.close()
            raise RewardFunctionError(f"{payload} (simulator worker {w}, {doing})")
        if status == "error":
            self.close()
            raise RolloutError(f"simulator worker {w} failed while {doing}: {payload}")
        return payload

    def _scatter(self, cmd: str, items: list[tuple], doing: str) -> list:
        per_worker: dict[int, list] = {}
        for item in items:
            slot = item[0]
            per_worker.setdefault(slot // self._per, []).append((slot % self._per, *item[1:]))
        for w, payload in per_worker.items():
            self._conns[w].send((cmd, payload))
        out = []
        for w in per_worker:
            for r in self._receive(w, doing):
                out.append((r[0] + w * self._per, *r[1:]))
        return out

    def reset_many(self, items: list[tuple[int, int, dict[str, Any] | None]]) -> dict[int, tuple]:
        return {i: (obs, info) for i, obs, info in self._scatter("reset", items, "resetting")}

    def step_many(self, actions: dict[int, Any]) -> dict[int, tuple]:
        results = self._scatter("step", sorted(actions.items()), "stepping")
        return {r[0]: r[1:] for r in results}

    def play_many(
        self,
        spec: ActorSpec,
        items: list[EpisodeItem],
        on_done: Any = None,
        deadline: float | None = None,
    ) -> list[Episode]:
        """Play `items` across the processes, one episode each at a time (see the module
        docstring). `on_done(episode)` is called as each finishes; when it returns False
        no further episode is started (those running are still collected). At `deadline`
        (a `time.time()`) the processes still playing are killed and the pool closed."""
        pending = list(reversed(items))
        busy: dict[int, EpisodeItem] = {}
        sent_spec: set[int] = set()
        done: list[Episode] = []
        stop = False

        since: dict[int, float] = {}

        def hand_out(w: int) -> None:
            item = pending.pop()
            since[w] = time.time()
            self._conns[w].send(("play", (None if w in sent_spec else spec, item)))
            sent_spec.add(w)
            busy[w] = item

        for w in range(len(self._conns)):
            if pending:
                hand_out(w)
        while busy:
            timeout = None if deadline is None else max(0.0, deadline - time.time())
            ready = wait([self._conns[w] for w in busy], timeout)
            if not ready:
                now = time.time()
                self.killed = [(w, busy[w].index, now - since[w]) for w in sorted(busy)]
                self.close(kill=True)
                break
            for w in sorted(w for w in busy if self._conns[w] in ready):
                item = busy.pop(w)
                episode = self._receive(w, f"playing episode {item.index}")
                done.append(episode)
                if on_done is not None and on_done(episode) is False:
                    stop = True
                if pending and not stop:
                    hand_out(w)
        return sorted(done, key=lambda e: e.index)

    def close(self, kill: bool = False) -> None:
        """Stop the processes: asked to close, killed if they do not (or at once, `kill`)."""
        for conn, proc in zip(self._conns, self._procs, strict=True):
            if kill:
                proc.kill()
                proc.join(timeout=5)
            if proc.is_alive():
                try:
                    conn.send(("close", None))
                    if conn.poll(5):
                        conn.recv()
                except (OSError, EOFError, BrokenPipeError):
                    pass
            proc.join(timeout=5)
            if proc.is_alive():
                proc.kill()
                proc.join(timeout=5)
            conn.close()
        self._conns, self._procs = [], []

    def __enter__(self) -> EnvPool:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def make_pool(
    env_id: str,
    env_kwargs: dict[str, Any],
    workers: int,
    envs_per_worker: int,
    max_steps: int,
    *,
    ray: str | None = None,
    on_event: Any = None,
) -> Any:
    """Ray actors on the cluster at `ray` when given (`trainer.ray_workers.RayPool`, one
    environment each; `on_event` hears of lost workers); else processes when `workers` > 1,
    otherwise environments in this process."""
    if ray is not None:
        from trainer.ray_workers import RayPool

        return RayPool(env_id, env_kwargs, workers, max_steps, address=ray, on_event=on_event)
    if workers <= 1:
        return LocalPool(env_id, env_kwargs, envs_per_worker, max_steps)
    return EnvPool(env_id, env_kwargs, workers, envs_per_worker, max_steps)
