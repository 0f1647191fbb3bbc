"""Time-trial evaluation: laps from the start line with a greedy policy, DeepRacer style.

Stable contract (used by `racer eval`, by training between iterations, by the benchmark,
and later for TFLite bundles):

`evaluate(policy_fn, track, laps, randomize, ...) -> EvalReport`, where `policy_fn` maps a
uint8 batch (B, 120, 160, 1) to actions: integer indices (B,) for discrete spaces or
(B, 2) values in [-1, 1] for continuous ones. It must be deterministic (argmax / mean)
for a time trial. Each lap is one evaluation trial from the start line (DeepRacer's
evaluation never round-robins the start), seeded `eval_seed(seed, lap)` so two models
are compared on the same randomized conditions; several trials run side by side so the
policy sees batches. A trial ends at `lap_complete` or at the first failure (off track,
reversed, immobilized), which counts one off-track and keeps the progress reached.

Reported per lap: lap time in simulated seconds (steps / control rate), completion
percentage, off-track count; overall: laps completed, mean and best lap time, mean speed
along the track, and the lap time over the track's physical limit (`limit_ratio`).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from trainer.episodes import Episode, EpisodeItem
from trainer.errors import EvaluationError

PolicyFn = Callable[[np.ndarray], np.ndarray]


@dataclass(frozen=True)
class LapResult:
    """One evaluation trial."""

    lap: int
    """Trial number, from 0."""
    completed: bool
    """The car crossed the finish line."""
    completion_pct: float
    """Progress reached, percent of the lap."""
    lap_time_s: float
    """Simulated seconds from the start to the finish (or to the failure)."""
    off_track: int
    """Failures during the trial (off track, reversed, immobilized): 0 or 1."""
    status: str
    """DeepRacer episode status that ended the trial."""
    steps: int
    """Environment steps played."""
    mean_speed_mps: float
    """Distance along the centre line over lap time."""


@dataclass(frozen=True)
class EvalReport:
    """A whole time trial."""

    track: str
    """Track name."""
    laps: tuple[LapResult, ...]
    """Per-lap results in order."""
    limit_lap_time_s: float | None = None
    """The track's physical lap-time limit (racing line), when known."""
    extra: dict[str, Any] = field(default_factory=dict)
    """Anything else the caller wants in the JSON (target, checkpoint...)."""

    @property
    def laps_completed(self) -> int:
        return sum(1 for lap in self.laps if lap.completed)

    @property
    def completion_pct(self) -> float:
        return float(np.mean([lap.completion_pct for lap in self.laps])) if self.laps else 0.0

    @property
    def lap_times_s(self) -> list[float]:
        return [lap.lap_time_s for lap in self.laps if lap.completed]

    @property
    def best_lap_s(self) -> float | None:
        return min(self.lap_times_s) if self.lap_times_s else None

    @property
    def mean_lap_s(self) -> float | None:
        return float(np.mean(self.lap_times_s)) if self.lap_times_s else None

    @property
    def limit_ratio(self) -> float | None:
        """Mean completed lap time over the track's limit (1.0 = physically perfect)."""
        if self.mean_lap_s is None or not self.limit_lap_time_s:
            return None
        return self.mean_lap_s / self.limit_lap_time_s

    def to_json(self) -> dict[str, Any]:
        best = self.best_lap_s
        return {
            "track": self.track,
            "laps": len(self.laps),
            "laps_completed": self.laps_completed,
            "completion_pct": round(self.completion_pct, 2),
            "lap_times_s": [round(t, 3) for t in self.lap_times_s],
            "best_lap_s": None if best is None else round(best, 3),
            "mean_lap_s": None if self.mean_lap_s is None else round(self.mean_lap_s, 3),
            "mean_speed_mps": round(
                float(np.mean([lap.mean_speed_mps for lap in self.laps])) if self.laps else 0.0, 3
            ),
            "off_track": sum(lap.off_track for lap in self.laps),
            "limit_lap_time_s": self.limit_lap_time_s,
            "limit_ratio": None if self.limit_ratio is None else round(self.limit_ratio, 4),
            "per_lap": [
                {
                    "lap": lap.lap,
                    "completed": lap.completed,
                    "completion_pct": round(lap.completion_pct, 2),
                    "lap_time_s": round(lap.lap_time_s, 3),
                    "off_track": lap.off_track,
                    "status": lap.status,
                }
                for lap in self.laps
            ],
            **self.extra,
        }


def run_trials(
    pool: Any,
    policy_fn: PolicyFn,
    laps: int,
    seed: int,
    *,
    record_frames: int = 0,
    deadline: float | None = None,
) -> list[Episode]:
    """Play `laps` trials from the start line over the pool's slots with the greedy
    `policy_fn`, which sees the observations of all running trials as one batch (a
    TFLite or Keras policy). `record_frames` > 0 keeps the observations of the first
    that many trials (video). Same seeds and starts as `play_trials`."""
    trials: dict[int, Episode] = {}
    active: dict[int, tuple[Episode, np.ndarray]] = {}
    next_lap = 0

    def start(slots: list[int]) -> None:
        nonlocal next_lap
        items = []
        for slot in slots:
            if next_lap >= laps:
                break
            item = EpisodeItem.evaluation(seed, next_lap)
            trials[next_lap] = Episode(index=next_lap, wall_start=time.time())
            items.append((slot, item.seed, {"start_progress": item.start_progress}))
            active[slot] = (trials[next_lap], np.empty(0))
            next_lap += 1
        for slot, (obs, info) in pool.reset_many(items).items():
            trial = active[slot][0]
            trial.infos.append(info)
            if trial.index < record_frames:
                trial.obs.append(obs)
            active[slot] = (trial, obs)

    start(list(range(pool.num_envs)))
    while active:
        if deadline is not None and time.time() > deadline:
            break
        slots = sorted(active)
        obs = np.stack([active[s][1] for s in slots])
        actions = np.asarray(policy_fn(obs))
        results = pool.step_many({s: actions[j] for j, s in enumerate(slots)})
        finished = []
        for j, slot in enumerate(slots):
            trial = active[slot][0]
            next_obs, reward, terminated, truncated, info = results[slot]
            trial.actions.append(actions[j])
            trial.rewards.append(reward)
            trial.infos.append(info)
            if trial.index < record_frames:
                trial.obs.append(next_obs)
            if terminated or truncated:
                trial.end(terminated, truncated, next_obs)
                del active[slot]
                finished.append(slot)
            else:
                active[slot] = (trial, next_obs)
        if finished:
            start(finished)
    return [trials[k] for k in sorted(trials)]


def play_trials(
    pool: Any, spec: Any, laps: int, seed: int, deadline: float | None = None
) -> list[Episode]:
    """`laps` trials from the start line played inside the pool's simulator processes
    with the NumPy policy `spec` (`trainer.actor.ActorSpec`, greedy): the in-training
    evaluation. Same seeds and starts as `run_trials`. Fewer come back when `deadline`
    (a `time.time()`) passes first (see `EnvPool.play_many`)."""
    items = [EpisodeItem.evaluation(seed, lap) for lap in range(laps)]
    return list(pool.play_many(spec, items, deadline=deadline))


def lap_result(trial: Episode, control_rate_hz: float, track_length_m: float) -> LapResult:
    """Summarise one trial (lap time in simulated seconds)."""
    steps = len(trial.actions)
    first = trial.infos[0].get("params", {}) if trial.infos else {}
    last = trial.infos[-1].get("params", {}) if trial.infos else {}
    if "sim_time" in first and "sim_time" in last:
        lap_time = float(last["sim_time"]) - float(first["sim_time"])
    else:
        lap_time = steps / control_rate_hz
    status = trial.status
    completed = status == "lap_complete" or trial.progress >= 100.0
    progress = 100.0 if completed else max(0.0, min(trial.progress, 100.0))
    length = float(last.get("track_length", track_length_m) or track_length_m)
    speed = progress / 100.0 * length / lap_time if lap_time > 0 else 0.0
    return LapResult(
        lap=trial.index,
        completed=completed,
        completion_pct=progress,
        lap_time_s=lap_time,
        off_track=0 if completed or status in ("time_up", "in_progress") else 1,
        status=status,
        steps=steps,
        mean_speed_mps=speed,
    )


def track_facts(track: Any) -> tuple[str, float, float | None]:
    """(name, centre-line length in m, limit lap time in s or None) of a track argument
    (catalogue name, .npy path or Track)."""
    from trainer.trackset import limit_lap_time_s, resolve_track

    t = resolve_track(track)
    return t.name, float(t.length_m), limit_lap_time_s(t)


def evaluate(
    policy_fn: PolicyFn,
    track: Any,
    laps: int,
    randomize: str = "none",
    *,
    metadata: Any = None,
    reward_function: Any = None,
    seed: int = 0,
    parallel: int = 5,
    env_id: str = "openracer/Race-v0",
    max_episode_steps: int = 3000,
    simtrace_dir: str | Path | None = None,
    video: str | Path | None = None,
    pool: Any = None,
    world: Any = None,
) -> EvalReport:
    """A time trial of `laps` laps on `track` (see the module docstring).

    `metadata` is a `ModelMetadata` (action space, control rate); `simtrace_dir` receives
    DeepRacer's evaluation layout `evaluation-<timestamp>/evaluation-simtrace/0-iteration.csv`;
    `video` an MP4 of what the car saw on the first lap. `pool` reuses existing simulator
    slots (training does); otherwise `parallel` environments run in this process, in
    `world` (a `sim2real.world.WorldConfig`, e.g. a sweep condition's) when given.
    """
    from trainer.logbook import episode_rows, write_simtrace
    from trainer.workers import LocalPool
    from vehicle.metadata import ModelMetadata

    if laps < 1:
        raise EvaluationError(f"--laps {laps} must be at least 1")
    metadata = metadata or ModelMetadata()
    name, length_m, limit = track_facts(track)
    own_pool = pool is None
    if own_pool:
        kwargs = env_kwargs_for(track, metadata, randomize, reward_function, training=False)
        if world is not None:
            kwargs["world"] = world
        pool = LocalPool(env_id, kwargs, min(parallel, laps), max_episode_steps)
    try:
        trials = run_trials(pool, policy_fn, laps, seed, record_frames=1 if video else 0)
    finally:
        if own_pool:
            pool.close()
    results = tuple(lap_result(t, metadata.control_rate_hz, length_m) for t in trials)
    report = EvalReport(track=name, laps=results, limit_lap_time_s=limit)
    discrete = metadata.action_space.kind == "discrete"
    if simtrace_dir is not None:
        stamp = time.strftime("%Y%m%d%H%M%S", time.gmtime())
        rows = [row for t in trials for row in episode_rows(t, metadata, discrete)]
        out = Path(simtrace_dir) / f"evaluation-{stamp}" / "evaluation-simtrace" / "0-iteration.csv"
        write_simtrace(out, rows)
        report.extra["simtrace"] = str(out)
    if video is not None and trials and trials[0].obs:
        write_video(video, trials[0].obs, metadata.control_rate_hz)
        report.extra["video"] = str(video)
    return report


def env_kwargs_for(
    track: Any, metadata: Any, randomize: str, reward_function: Any = None, training: bool = True
) -> dict[str, Any]:
    """Keyword arguments of `gymnasium.make("openracer/Race-v0", ...)` for a run."""
    kwargs: dict[str, Any] = {
        "track": track,
        "action_space": metadata.to_json(),
        "randomize": randomize,
        "training": training,
    }
    if reward_function is not None:
        kwargs["reward_function"] = reward_function
    return kwargs


def write_video(path: str | Path, frames: list[np.ndarray], fps: float) -> None:
    """An MP4 of grayscale observations, scaled up 4x so a person can watch it."""
    import cv2
    import imageio.v2 as imageio

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with imageio.get_writer(path, fps=fps, codec="libx264", macro_block_size=8) as writer:
        for f in frames:
            big = cv2.resize(f[:, :, 0], (640, 480), interpolation=cv2.INTER_NEAREST)
            writer.append_data(np.repeat(big[:, :, None], 3, axis=2))  # type: ignore[attr-defined]


def finite_or_none(x: float | None) -> float | None:
    return None if x is None or not math.isfinite(x) else x


def evaluate_in_training(
    pool: Any,
    spec: Any,
    trials: int,
    seed: int,
    control_rate_hz: float,
    deadline: float | None = None,
) -> tuple[list[Episode], dict[str, Any]]:
    """The evaluation between training iterations (DeepRacer's): `trials` greedy laps from
    the start line in the simulator processes, and their summary (mean progress, laps
    completed, mean lap time); nothing when `trials` is 0. Fewer trials come back when
    `deadline` passes first."""
    if trials <= 0:
        return [], {}
    played = play_trials(pool, spec, trials, seed, deadline)
    if not played:
        return [], {}
    laps = [lap_result(t, control_rate_hz, 0.0) for t in played]
    done = [lap.lap_time_s for lap in laps if lap.completed]
    return played, {
        "progress": float(np.mean([lap.completion_pct for lap in laps])),
        "laps_completed": sum(lap.completed for lap in laps),
        "trials": len(laps),
        "mean_lap_s": float(np.mean(done)) if done else None,
    }
