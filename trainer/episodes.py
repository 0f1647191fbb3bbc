"""Episodes: the one record of an episode as played, which episode to play, and the seeds.

Training and evaluation act through the same path:

- `EpisodeItem`: which episode to play (its number, reset seed, start position and the
  seed of its action sampling).
- `Episode`: the episode as played (observations, actions, log-probabilities, rewards,
  slimmed infos, how it ended) with the one rule for its DeepRacer status.
- Seeds: training episode k resets with `episode_seed(seed, k)`, starts `k * 0.05` of the
  lap on (DeepRacer's round robin) and samples with `sampling_seed(seed, k)`; evaluation
  trial k resets with `eval_seed(seed, k)` from the start line, so every checkpoint and
  every model is compared on the same conditions.
- `play_episode(env, spec, item)`: one whole episode with the NumPy actor
  (`trainer.actor`), inside a simulator process or in this one.

The time limit is the environment's: `trainer.workers.make_env` wraps every environment
in Gymnasium's `TimeLimit`, so `truncated` comes from the environment and nothing here
counts steps.

NumPy only: no TensorFlow (the simulator processes import this).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from trainer.actor import ActorSpec, act

ROUND_ROBIN_ADVANCE = 0.05
"""DeepRacer's ROUND_ROBIN_ADVANCE_DIST: each training episode starts 5 % further on."""


def episode_seed(seed: int, episode: int) -> int:
    """The environment seed of training episode number `episode` of a run seeded `seed`."""
    return int(np.random.SeedSequence([seed, episode, 0x5EED]).generate_state(1)[0])


def eval_seed(seed: int, trial: int) -> int:
    """The environment seed of evaluation trial `trial`: the same every iteration, so
    checkpoints are compared on identical conditions."""
    return int(np.random.SeedSequence([seed, trial, 0xE7A1]).generate_state(1)[0])


def sampling_seed(seed: int, episode: int) -> list[int]:
    """Seed material of the action-sampling generator of training episode `episode`."""
    return [int(seed), int(episode), 0x5A]


@dataclass(frozen=True)
class EpisodeItem:
    """Which episode to play: its number, reset seed, start and sampling seed."""

    index: int
    seed: int
    start_progress: float
    rng_seed: list[int]

    @classmethod
    def training(cls, seed: int, episode: int) -> EpisodeItem:
        """Training episode number `episode` of a run seeded `seed` (round-robin start)."""
        return cls(
            index=episode,
            seed=episode_seed(seed, episode),
            start_progress=(episode * ROUND_ROBIN_ADVANCE) % 1.0,
            rng_seed=sampling_seed(seed, episode),
        )

    @classmethod
    def evaluation(cls, seed: int, trial: int) -> EpisodeItem:
        """Evaluation trial number `trial`: from the start line, seeded `eval_seed`."""
        return cls(
            index=trial, seed=eval_seed(seed, trial), start_progress=0.0, rng_seed=[seed, trial]
        )


@dataclass
class Episode:
    """One episode as played (a training episode, or an evaluation trial)."""

    index: int
    """Run-wide episode number (drives the seed and the round-robin start), or the trial."""
    start_progress: float = 0.0
    """Start position as a fraction of the lap."""
    obs: list[np.ndarray] = field(default_factory=list)
    """Every observation an action was chosen on (training), or the frames kept for a
    video (evaluation: the first one also holds the final frame)."""
    actions: list[Any] = field(default_factory=list)
    logp: list[float] = field(default_factory=list)
    """Behaviour log-probability of each action (training; empty for greedy play)."""
    rewards: list[float] = field(default_factory=list)
    infos: list[dict[str, Any]] = field(default_factory=list)
    """Slimmed step infos (reset info first), for simtrace rows and metrics."""
    terminated: bool = False
    truncated: bool = False
    """The time limit ended it (never together with `terminated`)."""
    final_obs: np.ndarray | None = None
    wall_start: float = 0.0
    wall_end: float = 0.0
    step_s: float = 0.0
    """Wall time spent in the environment's `step` calls."""
    reward_s: float = 0.0
    """Of which in the reward function (from the env's `reward_fn.seconds`; 0 when the
    environment has no such counter)."""

    def end(self, terminated: bool, truncated: bool, final_obs: np.ndarray | None) -> None:
        """Record how the episode ended; a step that terminates is not a truncation."""
        self.terminated, self.truncated = bool(terminated), bool(truncated and not terminated)
        self.final_obs = final_obs
        self.wall_end = time.time()

    @property
    def status(self) -> str:
        """DeepRacer's episode status of the last step; `time_up` for a truncation."""
        info = self.infos[-1] if self.infos else {}
        status = str(info.get("episode_status", ""))
        if self.truncated and status in ("", "in_progress", "prepare"):
            return "time_up"
        return status or ("lap_complete" if self.progress >= 100.0 else "unknown")

    @property
    def progress(self) -> float:
        """Progress of the last step, percent of the lap."""
        params = (self.infos[-1] if self.infos else {}).get("params", {})
        return float(params.get("progress", 0.0))


def play_episode(env: Any, spec: ActorSpec, item: EpisodeItem, slim: Any = None) -> Episode:
    """Play one whole episode of `env` with `spec` (see the module docstring); the
    environment's time limit ends it at the latest. `slim` reduces each step's info before
    it is kept (the worker's `slim_info`)."""
    slim = slim or (lambda info: info)
    rng = np.random.default_rng(item.rng_seed)
    ep = Episode(index=item.index, start_progress=item.start_progress, wall_start=time.time())
    obs, info = env.reset(seed=item.seed, options={"start_progress": item.start_progress})
    obs = np.asarray(obs, dtype=np.uint8)
    ep.infos.append(slim(info))
    while True:
        if spec.record_obs:
            ep.obs.append(obs)
        actions, logp = act(spec, spec.head(obs[None]), rng)
        action = actions[0]
        env_action = action if spec.discrete else np.clip(action, -1.0, 1.0)
        before = time.perf_counter(), _reward_seconds(env)
        obs, reward, terminated, truncated, info = env.step(env_action)
        ep.step_s += time.perf_counter() - before[0]
        ep.reward_s += _reward_seconds(env) - before[1]
        obs = np.asarray(obs, dtype=np.uint8)
        ep.actions.append(action)
        if not spec.greedy:
            ep.logp.append(float(logp[0]))
        ep.rewards.append(float(reward))
        ep.infos.append(slim(info))
        if terminated or truncated:
            ep.end(terminated, truncated, obs)
            return ep


def _reward_seconds(env: Any) -> float:
    """Seconds the environment's reward function has run so far (`sim2real.reward`'s
    counter), 0.0 for an environment without one."""
    return float(getattr(getattr(env.unwrapped, "reward_fn", None), "seconds", 0.0))
