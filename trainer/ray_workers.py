"""Simulator workers as Ray actors across machines: `RayPool`, the cluster alternative to
`trainer.workers.EnvPool` behind the same `play_many` (`racer train --ray [ADDRESS]`).

Each worker is a Ray Core actor (`SimulatorActor`, one CPU) holding one environment and
playing whole episodes with the NumPy actor (`trainer.episodes.play_episode`): no
TensorFlow in a worker, so a worker node needs the training extras without a GPU. The
learner stays in the driver process (`trainer.ppo.train`), on whatever accelerator
TensorFlow sees there.

- **Connecting**: `trainer.ray_connection.connect` (`auto` or `HOST:PORT`); a pool that
  joined the cluster itself leaves it when closed.
- **Weights**: put into Ray's object store once per policy (`ray.put`, reused while the
  weights are unchanged, so an iteration's rollout and its evaluation share one copy);
  each node fetches them once, each worker decodes them once per policy.
- **Same episodes**: every episode is seeded from its number (`trainer.episodes.
  EpisodeItem`), so which worker or machine plays it does not change it: a Ray run plays
  the same episodes as the local pool with the same seed.
- **Faults**: a worker process or a whole node that dies loses only its episodes in
  flight (the one playing and the one queued, `QUEUE_DEPTH`); they go back to the front
  of the queue and are played again elsewhere, each from its own seed, so the same
  episodes, counted once. A replacement
  worker is started and takes work once Ray has placed it. Each fault is reported
  through `on_event` (the live display) and counted in `replayed`. An episode that kills
  its worker `MAX_REPLAYS` times is an error (something in it crashes the process).
- **Deadline**: as `EnvPool`: workers still playing when it passes are killed (`killed`).
- **Imitation**: the warm start's expert and DAgger episodes run as Ray tasks
  (`collect_expert`), retried by Ray when a worker dies (they are seeded by number too).
- **Reward file**: a run's `reward_function.py` is shipped by content; each worker writes
  it to a temporary file of its own (the driver's path need not exist on other machines),
  and messages still name the user's file (`reward_source`).

Per-step calls (`reset_many`/`step_many`, used by `racer eval` with a batched TFLite or
Keras policy) are not offered: a network round trip per step is the wrong grain across
machines. Training and its in-training evaluation only need `play_many`.

Ray is imported only here and only when a `RayPool` is made: nothing else needs it.
"""

from __future__ import annotations

import dataclasses
import os
import socket
import time
from collections import Counter, deque
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sim2real.errors import RewardFunctionError
from trainer.actor import ActorSpec
from trainer.episodes import Episode, EpisodeItem
from trainer.errors import RolloutError
from trainer.ray_connection import _first_line, connect, disconnect

START_TIMEOUT_S = 180.0
"""How long to wait for the first simulator workers to be placed and started."""
NO_WORKER_TIMEOUT_S = 180.0
"""With episodes left and no worker alive, how long to wait for a replacement to start."""
QUEUE_DEPTH = 2
"""Episodes handed to a worker at once (one playing, the next waiting in its queue)."""
MAX_REPLAYS = 3
"""An episode whose worker dies this many times is an error, not bad luck."""


def _portable(env_kwargs: dict[str, Any]) -> tuple[dict[str, Any], bytes | None]:
    """`env_kwargs` to send to another machine, and the reward file's bytes (None without
    one): the driver's path to it need not exist there."""
    kwargs = dict(env_kwargs)
    if isinstance(kwargs.get("reward_function"), str | Path):
        kwargs["reward_function"] = str(kwargs["reward_function"])
        return kwargs, Path(kwargs["reward_function"]).read_bytes()
    return kwargs, None


def _with_local_reward(env_kwargs: dict[str, Any], reward_text: bytes | None) -> dict[str, Any]:
    """`env_kwargs` on this machine: the reward file written to a temporary file of this
    process (same name, so messages and the module's sys.modules name follow
    `reward_source`, the user's file)."""
    kwargs = dict(env_kwargs)
    if reward_text is not None:
        folder = Path(os.environ.get("TMPDIR", "/tmp")) / f"openracer-ray-{os.getpid()}"
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / Path(kwargs["reward_function"]).name
        path.write_bytes(reward_text)
        kwargs["reward_function"] = str(path)
    return kwargs


def collect_expert(calls: list[tuple[Any, ...]], env_kwargs: dict[str, Any]) -> list[Any]:
    """`trainer.expert_data._collect(*call)` for every call as Ray tasks of one CPU each
    (the imitation warm start's expert and DAgger episodes), results in call order. Each
    call's arguments name its episodes, which are seeded from their numbers, so a task
    whose worker or node dies is simply run again by Ray (`max_retries`), with the same
    result."""
    import ray

    kwargs, reward_text = _portable(env_kwargs)
    task = ray.remote(num_cpus=1, max_retries=MAX_REPLAYS)(_expert_task)
    refs = [
        task.options(scheduling_strategy="SPREAD").remote(kwargs, reward_text, call)
        for call in calls
    ]
    try:
        results = ray.get(refs)
    except ray.exceptions.RayTaskError as exc:
        cause = exc.cause if isinstance(exc.cause, BaseException) else exc
        if getattr(cause, "exit_code", None) is not None:
            raise cause from None  # a bad reward file or setting: the one-line error
        raise RolloutError(f"Ray: an expert episode task failed: {cause}") from exc
    except ray.exceptions.RayError as exc:
        raise RolloutError(
            f"Ray: expert episodes lost {MAX_REPLAYS} times ({_first_line(exc)}); check the "
            "cluster's nodes (`ray status`)"
        ) from exc
    return list(results)


def _expert_task(env_kwargs: dict[str, Any], reward_text: bytes | None, call: tuple) -> Any:
    from trainer.expert_data import _collect

    env_id, _, *rest = call
    return _collect(env_id, _with_local_reward(env_kwargs, reward_text), *rest)


class SimulatorActor:
    """One simulator worker inside a Ray worker process: its environment and the current
    policy. Failures come back as values (`("error", text)`), so a Ray exception always
    means the process or its node died."""

    def __init__(
        self,
        env_id: str,
        env_kwargs: dict[str, Any],
        max_steps: int,
        reward_text: bytes | None,
    ):
        os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
        from trainer.workers import _Slots

        self.failure: tuple[str, str] | None = None
        self.version = -1
        self.weights_ref: Any = None
        self.weights: list[Any] = []
        self.spec: ActorSpec | None = None
        try:
            self.slots = _Slots(env_id, _with_local_reward(env_kwargs, reward_text), 1, max_steps)
        except RewardFunctionError as exc:
            self.failure = ("reward_error", str(exc))
        except BaseException as exc:
            from trainer.workers import _describe

            self.failure = ("error", _describe(exc))

    def ready(self) -> tuple[str, Any]:
        """("ok", where this worker runs) or the failure of its start."""
        import sys

        import ray

        if self.failure is not None:
            return self.failure
        return "ok", {
            "node": ray.get_runtime_context().get_node_id(),
            "host": socket.gethostname(),
            "pid": os.getpid(),
            "tensorflow": "tensorflow" in sys.modules,
        }

    def play(
        self, weights: list[Any], spec: ActorSpec, version: int, item: EpisodeItem
    ) -> tuple[str, Any]:
        """("ok", the episode) played with `spec` and the weights in the object store
        (`weights` holds their reference, unresolved: fetched once per new policy)."""
        import ray

        from trainer.workers import _describe

        try:
            if version != self.version:
                if weights[0] != self.weights_ref:
                    self.weights = ray.get(weights[0])
                    self.weights_ref = weights[0]
                self.spec = dataclasses.replace(spec, weights=self.weights)
                self.version = version
            assert self.spec is not None
            return "ok", self.slots.play(self.spec, item)
        except RewardFunctionError as exc:
            return "reward_error", str(exc)
        except BaseException as exc:
            return "error", _describe(exc)


@dataclass
class _Worker:
    number: int
    actor: Any
    started: Any
    """The `ready()` reference while the worker starts; None once it runs."""
    where: dict[str, Any] = dataclasses.field(default_factory=dict)

    @property
    def name(self) -> str:
        host = self.where.get("host", "?")
        node = str(self.where.get("node", ""))[:8]
        return f"simulator worker {self.number} (on {host}, node {node or '?'})"


class RayPool:
    """`workers` simulator workers as Ray actors (see the module docstring); the same
    `play_many`, `close`, `num_envs` and `killed` as `trainer.workers.EnvPool`."""

    def __init__(
        self,
        env_id: str,
        env_kwargs: dict[str, Any],
        workers: int,
        max_steps: int,
        *,
        address: str = "auto",
        on_event: Callable[[str], None] | None = None,
    ):
        import ray

        self._ray = ray
        self.num_envs = workers
        self.on_event = on_event
        self.killed: list[tuple[int, int, float]] = []
        """(worker, episode, seconds on it) of each worker `play_many` killed at its
        deadline, for the stop reason."""
        self.replayed = 0
        """Episodes played again because their worker or its node died."""
        self.events: list[str] = []
        """What happened to the workers (each line also goes to `on_event`)."""
        self._owns_connection = not ray.is_initialized()
        self.cluster = connect(address, workers)
        kwargs, reward_text = _portable(env_kwargs)
        self._actor_class: Any = ray.remote(num_cpus=1, max_restarts=0, max_task_retries=0)(
            SimulatorActor
        )
        self._args = (env_id, kwargs, max_steps, reward_text)
        self._workers: list[_Worker] = []
        self._next_number = 0
        self._started_total = 0
        self._weights: tuple[list[Any], Any] | None = None
        self._version = 0
        self._lost: dict[int, int] = {}
        for _ in range(workers):
            self._start_worker()
        self.await_workers(START_TIMEOUT_S)

    # -- workers ---------------------------------------------------------------------
    def _start_worker(self) -> None:
        if self._started_total >= 10 * self.num_envs + 10:
            self.close()
            raise RolloutError(
                f"Ray: {self._started_total} simulator workers started and lost; the "
                f"cluster ({self.cluster}) keeps losing them: check its nodes "
                "(`ray status`) and their logs"
            )
        self._started_total += 1
        actor = self._actor_class.options(scheduling_strategy="SPREAD").remote(*self._args)
        self._workers.append(_Worker(self._next_number, actor, actor.ready.remote()))
        self._next_number += 1

    def await_workers(self, timeout_s: float) -> None:
        """Wait until every worker started or `timeout_s` passed; at least one must run."""
        end = time.time() + timeout_s
        while any(w.started is not None for w in self._workers) and time.time() < end:
            if any(w.started is None for w in self._workers) and self._unplaced():
                break  # the rest wait for a CPU (a node to join), not for their start
            starting = [w.started for w in self._workers if w.started is not None]
            wait_s = min(end - time.time(), 2.0)
            ready, _ = self._ray.wait(starting, num_returns=1, timeout=max(wait_s, 0.0))
            for ref in ready:
                self._started(ref)
        running = [w for w in self._workers if w.started is None]
        if not running:
            self.close()
            raise RolloutError(
                f"Ray: no simulator worker started within {timeout_s:.0f} s on "
                f"{self.cluster}; each needs 1 free CPU: lower --workers or add nodes "
                "(`ray status` shows what is free)"
            )
        if len(running) < self.num_envs:
            self._event(
                f"Ray: {len(running)} of {self.num_envs} simulator workers running; the "
                "rest join when the cluster has a free CPU for them"
            )

    def _unplaced(self) -> bool:
        """Some worker waits for a CPU: none is free, and fewer are taken than there are
        workers (on a cluster shared with other jobs this can only err towards not
        waiting; such a worker joins `play_many` once it starts)."""
        free = float(self._ray.available_resources().get("CPU", 0.0))
        taken = float(self._ray.cluster_resources().get("CPU", 0.0)) - free
        return free < 1.0 and taken < len(self._workers)

    def _started(self, ref: Any) -> None:
        """A worker's `ready()` answered: it runs, failed to start, or died starting."""
        worker = next(w for w in self._workers if w.started == ref)
        try:
            status, payload = self._ray.get(ref)
        except self._ray.exceptions.RayError as exc:
            self._workers.remove(worker)
            self._event(f"Ray: {worker.name} died while starting ({_first_line(exc)}); restarting")
            self._start_worker()
            return
        if status != "ok":
            self.close()
            if status == "reward_error":
                raise RewardFunctionError(f"{payload} (Ray {worker.name}, starting)")
            raise RolloutError(f"Ray {worker.name} failed while starting: {payload}")
        worker.started, worker.where = None, payload

    def where(self) -> list[dict[str, Any]]:
        """Where each running worker is (node id, host, pid, whether TensorFlow is loaded)."""
        return [dict(w.where, worker=w.number) for w in self._workers if w.started is None]

    def _event(self, text: str) -> None:
        self.events.append(text)
        if self.on_event is not None:
            self.on_event(text)

    def _weights_ref(self, weights: list[Any]) -> Any:
        """The object-store reference of `weights`: put once, reused while unchanged."""
        import numpy as np

        if self._weights is not None:
            known, ref = self._weights
            if len(known) == len(weights) and all(
                a.shape == b.shape and np.array_equal(a, b)
                for a, b in zip(known, weights, strict=True)
            ):
                return ref
        ref = self._ray.put(weights)
        self._weights = ([np.array(w, copy=True) for w in weights], ref)
        return ref

    # -- episodes --------------------------------------------------------------------
    def play_many(
        self,
        spec: ActorSpec,
        items: list[EpisodeItem],
        on_done: Callable[[Episode], Any] | None = None,
        deadline: float | None = None,
    ) -> list[Episode]:
        """Play `items` across the workers, each holding up to `QUEUE_DEPTH` (the next
        one waits in its queue while it plays one); sorted by number. As
        `EnvPool.play_many`: `on_done` returning False starts no further episode; at
        `deadline` the workers still playing are killed and the pool closed. An episode
        whose worker dies is played again."""
        ray = self._ray
        weights = [self._weights_ref(spec.weights)]  # in a list: the worker resolves it
        light = dataclasses.replace(spec, weights=[])
        self._version += 1
        pending = deque(items)
        busy: dict[Any, tuple[_Worker, EpisodeItem, float]] = {}
        done: dict[int, Episode] = {}
        stop = False
        idle_since = time.time()
        while True:
            if not stop:
                # Each worker holds up to QUEUE_DEPTH episodes: the next one is already
                # there when it finishes one, so no worker idles for a round trip.
                queued = Counter(id(w) for w, _, _ in busy.values())
                for depth in range(1, QUEUE_DEPTH + 1):
                    for worker in self._workers:
                        if pending and worker.started is None and queued[id(worker)] < depth:
                            item = pending.popleft()
                            ref = worker.actor.play.remote(weights, light, self._version, item)
                            busy[ref] = (worker, item, time.time())
                            queued[id(worker)] += 1
            if not busy and (stop or not pending):
                break
            starting = [w.started for w in self._workers if w.started is not None]
            timeout: float | None = None
            if deadline is not None:
                timeout = max(0.0, deadline - time.time())
            if not busy:
                left = NO_WORKER_TIMEOUT_S - (time.time() - idle_since)
                timeout = left if timeout is None else min(timeout, left)
                if not starting or left <= 0:
                    self.close()
                    raise RolloutError(
                        f"Ray: no simulator worker alive and none started within "
                        f"{NO_WORKER_TIMEOUT_S:.0f} s ({self.cluster}); add a node, or "
                        "lower --workers; `racer train --resume` continues the run"
                    )
            ready, _ = ray.wait([*busy, *starting], num_returns=1, timeout=timeout)
            if not ready:
                if deadline is not None and time.time() >= deadline:
                    now = time.time()
                    playing: dict[int, tuple[int, int, float]] = {}
                    for w, it, t in busy.values():  # the oldest of each worker is playing
                        playing.setdefault(w.number, (w.number, it.index, now - t))
                    self.killed = sorted(playing.values())
                    self.close()
                    break
                continue
            for ref in ready:
                if ref not in busy:
                    self._started(ref)
                    continue
                worker, item, _ = busy.pop(ref)
                episode = self._result(ref, worker, item, pending)
                if episode is None:
                    continue
                idle_since = time.time()
                if episode.index in done:
                    continue
                done[episode.index] = episode
                if on_done is not None and on_done(episode) is False:
                    stop = True
            if busy:
                idle_since = time.time()
        return [done[k] for k in sorted(done)]

    def _result(
        self, ref: Any, worker: _Worker, item: EpisodeItem, pending: deque[EpisodeItem]
    ) -> Episode | None:
        """The episode `ref` holds; None when its worker died (the episode goes back to
        the front of `pending` and a replacement worker starts)."""
        ray = self._ray
        try:
            status, payload = ray.get(ref)
        except ray.exceptions.RayTaskError as exc:
            self.close()
            raise RolloutError(
                f"Ray {worker.name} failed playing episode {item.index}: {exc}"
            ) from exc
        except ray.exceptions.RayError as exc:
            self._lose(worker, item, exc)
            pending.appendleft(item)
            return None
        if status == "reward_error":
            self.close()
            raise RewardFunctionError(f"{payload} (Ray {worker.name}, episode {item.index})")
        if status == "error":
            self.close()
            raise RolloutError(f"Ray {worker.name} failed playing episode {item.index}: {payload}")
        return payload  # type: ignore[no-any-return]

    def _lose(self, worker: _Worker, item: EpisodeItem, exc: BaseException) -> None:
        if worker not in self._workers:
            # Queued on a worker already known lost: played elsewhere, nothing new to say.
            self.replayed += 1
            return
        self._lost[item.index] = self._lost.get(item.index, 0) + 1
        self._workers.remove(worker)
        try:
            self._ray.kill(worker.actor, no_restart=True)
        except Exception:
            pass  # already gone with its node
        if self._lost[item.index] >= MAX_REPLAYS:
            self.close()
            raise RolloutError(
                f"Ray: episode {item.index} lost its simulator worker {MAX_REPLAYS} times "
                f"(last: {worker.name}, {_first_line(exc)}); something in it kills the "
                "process (a reward function that crashes the interpreter, or runs out of "
                "memory): rerun with --workers 1 without --ray to see it"
            )
        self.replayed += 1
        self._event(
            f"Ray: {worker.name} died while playing episode {item.index} "
            f"({type(exc).__name__}: {_first_line(exc)}); the episode is played again on "
            "another worker and a replacement is starting"
        )
        self._start_worker()

    def close(self, kill: bool = False) -> None:
        """Stop every worker; leave the cluster when this pool joined it."""
        for worker in self._workers:
            try:
                self._ray.kill(worker.actor, no_restart=True)
            except Exception:
                pass  # its node is gone
        self._workers = []
        self._weights = None
        if self._owns_connection:
            disconnect()
            self._owns_connection = False

    def __enter__(self) -> RayPool:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
