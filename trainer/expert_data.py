"""Frames labelled by the simulator's privileged expert, for the imitation warm start
(`trainer.imitation`): behaviour cloning and DAgger.

The expert (`sim2real.pure_pursuit.PurePursuit`) sees the true pose and the track; its
command is mapped onto the model's action space (`action_for`: nearest discrete action,
or the [-1, 1] vector for continuous spaces). Episodes start at round-robin positions
with the run's randomization, so the policy learns from the same pixels PPO will see.
Episodes are played in `processes` spawned simulator processes (the work is the
simulator's: one core each).

NumPy only: no TensorFlow (the simulator processes import this).
"""

from __future__ import annotations

import multiprocessing as mp
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from typing import Any

import numpy as np

from sim2real.pure_pursuit import PurePursuit, PurePursuitConfig
from trainer.actor import ActorSpec, act
from trainer.errors import TrainConfigError


def collect_expert(
    env_id: str,
    env_kwargs: dict[str, Any],
    space: Any,
    episodes: int,
    seed: int,
    max_steps: int,
    *,
    expert: PurePursuitConfig | None = None,
    student: ActorSpec | None = None,
    beta: float = 1.0,
    processes: int = 1,
    on_ray: bool = False,
) -> ExpertData:
    """Observations and expert actions from `episodes` episodes (see `_collect`), played
    in `processes` simulator processes, or as that many Ray tasks on the cluster this
    process joined (`on_ray`, `trainer.ray_workers.collect_expert`): the same frames, in
    the same order, for any number of processes."""
    chunks = np.array_split(np.arange(episodes), max(1, min(processes, episodes)))
    parts = [[int(k) for k in chunk] for chunk in chunks]
    args = (env_id, env_kwargs, space, seed, max_steps, expert, student, beta)
    if on_ray:
        from trainer.ray_workers import collect_expert as on_cluster

        return ExpertData.merge(on_cluster([(*args, part) for part in parts], env_kwargs))
    if len(parts) <= 1:
        return _collect(*args, list(range(episodes)))
    with ProcessPoolExecutor(len(parts), mp_context=mp.get_context("spawn")) as pool:
        results = list(pool.map(_collect, *zip(*[(*args, part) for part in parts], strict=True)))
    return ExpertData.merge(results)


@dataclass
class ExpertData:
    """Frames the expert labelled, and how the episodes that produced them went."""

    obs: np.ndarray
    actions: np.ndarray
    laps: int
    """Episodes that completed a lap."""
    episodes: int
    lap_times_s: list[float]

    @staticmethod
    def merge(parts: list[ExpertData]) -> ExpertData:
        return ExpertData(
            np.concatenate([p.obs for p in parts]),
            np.concatenate([p.actions for p in parts]),
            sum(p.laps for p in parts),
            sum(p.episodes for p in parts),
            [t for p in parts for t in p.lap_times_s],
        )


def _collect(
    env_id: str,
    env_kwargs: dict[str, Any],
    space: Any,
    seed: int,
    max_steps: int,
    expert: PurePursuitConfig | None,
    student: ActorSpec | None,
    beta: float,
    episodes: list[int],
) -> ExpertData:
    """Observations and expert actions from the episodes numbered `episodes`.

    Without `student` the expert drives (behaviour cloning). With one, each step is driven
    by the expert with probability `beta` and by the student's greedy action otherwise,
    and every visited frame is labelled with the expert's action (DAgger, Ross et al.
    2011): the student learns to recover from the states its own mistakes lead to.
    """

    from trainer.workers import make_env

    env = make_env(env_id, env_kwargs, max_steps)
    base = env.unwrapped
    if not hasattr(base, "world"):
        raise TrainConfigError(
            f"--imitation-episodes needs the openracer simulator's expert; {env_id} has none"
        )
    obs_list, act_list = [], []
    laps, lap_times = 0, []
    try:
        for k in episodes:
            rng = np.random.default_rng([seed, k])
            obs, _ = env.reset(seed=seed * 7919 + k, options={"start_progress": (k * 0.05) % 1.0})
            driver = PurePursuit(base.world, expert)
            terminated = truncated = False
            info: dict[str, Any] = {}
            while not (terminated or truncated):
                label = driver.action_for(space)
                obs_list.append(obs)
                act_list.append(label)
                action = label
                if student is not None and rng.random() >= beta:
                    action = act(student, student.head(obs[None]), rng)[0][0]
                obs, _, terminated, truncated, info = env.step(action)
            if info.get("episode_status") == "lap_complete":
                laps += 1
                lap_times.extend(base.laps.lap_times_s)
    finally:
        env.close()
    return ExpertData(np.stack(obs_list), np.asarray(act_list), laps, len(episodes), lap_times)
