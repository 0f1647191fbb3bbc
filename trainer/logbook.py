"""What a training run writes besides checkpoints: DeepRacer simtrace CSVs,
`metrics/TrainingMetrics.json`, and TensorBoard scalars and images.

Simtrace rows are formatted by `sim2real.simtrace` (the owner of that contract: DeepRacer's
17 classic columns, compat reference section 2), one `prepare` row at the start of
every episode, `True`/`False` literals and the numeric action index for discrete spaces,
so deepracer-utils reads the run folder as a DRfC single-worker model. Files are written
whole and atomically (one per iteration), never appended, so a killed run cannot leave a
half row.

TrainingMetrics.json holds one entry per training episode (`phase: training`) and per
evaluation trial (`phase: evaluation`) with the keys deepracer-utils needs (`trial`,
`episode`, `phase`, `reward_score`, `completion_percentage`,
`elapsed_time_in_milliseconds`, `episode_status`, `start_time`, `metric_time`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from trainer.episodes import Episode
from vehicle.files import atomic_write, atomic_write_json

STATUS_LABELS = {
    "prepare": "Prepare",
    "in_progress": "In progress",
    "lap_complete": "Lap complete",
    "off_track": "Off track",
    "crashed": "Crashed",
    "reversed": "Reversed",
    "immobilized": "Immobilized",
    "time_up": "Time up",
    "pause": "Pause",
    "park": "Park",
}
"""DeepRacer's EpisodeStatus labels as TrainingMetrics.json writes them."""


def _fmt_action(action: Any, discrete: bool) -> str:
    if discrete:
        return str(int(np.asarray(action).reshape(())))
    vec = np.clip(np.asarray(action, dtype=np.float64).reshape(-1), -1.0, 1.0)
    return "[" + " ".join(f"{v:.4f}" for v in vec) + "]"


def episode_rows(episode: Episode, metadata: Any, discrete: bool) -> list[str]:
    """Simtrace lines of one episode (training, or an evaluation trial): the reset
    (prepare) row, then one row per step with the action taken and the reward it earned."""
    from sim2real.simtrace import format_row

    infos, actions, rewards = episode.infos, episode.actions, episode.rewards
    end_status = episode.status
    rows = []
    space = metadata.action_space
    n = len(actions)
    for k, info in enumerate(infos):
        p = info.get("params", {})
        if k == 0:
            steer = speed = 0.0
            action_text = "-1" if discrete else "[0.0000 0.0000]"
            reward, status = 0.0, "prepare"
        else:
            a = actions[k - 1]
            steer, speed = space.decode(a if discrete else np.clip(a, -1, 1))
            action_text = _fmt_action(a, discrete)
            reward = rewards[k - 1]
            status = end_status if k == n else "in_progress"
        closest = p.get("closest_waypoint")
        if closest is None:
            cw = p.get("closest_waypoints", [0, 0])
            closest = cw[0] if isinstance(cw, list | tuple) and cw else 0
        rows.append(
            format_row(
                episode=episode.index,
                steps=int(p.get("steps", k + 1)),
                x=float(p.get("x", 0.0)),
                y=float(p.get("y", 0.0)),
                yaw_deg=float(p.get("heading", 0.0)),
                steer_deg=float(p.get("steering_angle", steer)),
                throttle_mps=float(p.get("speed", speed)),
                action=action_text,
                reward=float(reward),
                done=k == n and k > 0,
                all_wheels_on_track=bool(p.get("all_wheels_on_track", True)),
                progress=float(p.get("progress", 0.0)),
                closest_waypoint=int(closest),
                track_len_m=float(p.get("track_length", 0.0)),
                tstamp_s=float(p.get("sim_time", k / metadata.control_rate_hz)),
                episode_status=status,
            )
        )
    return rows


def write_simtrace(path: str | Path, rows: list[str]) -> None:
    """Write a simtrace CSV (sim2real's header + lines) atomically, whole."""
    from sim2real.simtrace import HEADER

    atomic_write(path, (HEADER + "".join(rows)).encode("utf-8"))


def metric_entry(
    *,
    episode: int,
    trial: int,
    phase: str,
    reward: float,
    progress: float,
    status: str,
    start_s: float,
    end_s: float,
) -> dict[str, Any]:
    """One TrainingMetrics.json entry as the simapp writes it."""
    return {
        "reward_score": int(round(reward)),
        "metric_time": int(end_s * 1000),
        "start_time": int(start_s * 1000),
        "elapsed_time_in_milliseconds": int(max(end_s - start_s, 0.0) * 1000),
        "episode": int(episode),
        "trial": int(trial),
        "phase": phase,
        "completion_percentage": int(max(0.0, min(progress, 100.0))),
        "episode_status": STATUS_LABELS.get(status, status.replace("_", " ").capitalize()),
    }


def write_metrics(path: str | Path, entries: list[dict[str, Any]]) -> None:
    """Rewrite TrainingMetrics.json atomically."""
    atomic_write_json(path, {"metrics": entries, "version": "2", "best_model_metric": "progress"})


class TensorBoard:
    """Scalars and observation images in `RUN/tensorboard`."""

    def __init__(self, logdir: str | Path):
        import tensorflow as tf

        self._tf = tf
        self.writer = tf.summary.create_file_writer(str(logdir))

    def scalars(self, step: int, values: dict[str, float]) -> None:
        with self.writer.as_default():
            for name, value in values.items():
                if value is not None and np.isfinite(value):
                    self._tf.summary.scalar(name, float(value), step=step)

    def images(self, step: int, name: str, frames: np.ndarray) -> None:
        """`frames`: uint8 (B, 120, 160, 1), what the agent saw."""
        with self.writer.as_default():
            self._tf.summary.image(name, frames, step=step, max_outputs=len(frames))

    def flush(self) -> None:
        self.writer.flush()

    def close(self) -> None:
        self.writer.close()


class Logbook:
    """Everything an iteration writes besides checkpoints, in one call: the simtrace of
    its training episodes, TrainingMetrics.json (training episodes and evaluation trials),
    TensorBoard scalars and a few observations."""

    def __init__(self, run: Any, metadata: Any, metrics: list[dict[str, Any]]) -> None:
        self.run = run
        self.metadata = metadata
        self.discrete = metadata.action_space.kind == "discrete"
        self.metrics = metrics
        self.tensorboard = TensorBoard(run.tensorboard)

    def write_iteration(
        self,
        iteration: int,
        episodes: list[Episode],
        trials: list[Episode],
        stats: dict[str, Any],
        observations: np.ndarray,
    ) -> None:
        """Iteration number `iteration` (counted from 1) with its training `episodes`,
        evaluation `trials`, figures `stats` and observations (four go to TensorBoard).
        Its simtrace is `{iteration - 1}-iteration.csv`, as DeepRacer numbers them."""
        from trainer.evaluate import lap_result

        rows = [row for e in episodes for row in episode_rows(e, self.metadata, self.discrete)]
        for k, e in enumerate(episodes):
            self.metrics.append(
                metric_entry(
                    episode=e.index,
                    trial=k + 1,
                    phase="training",
                    reward=sum(e.rewards),
                    progress=e.progress,
                    status=e.status,
                    start_s=e.wall_start,
                    end_s=e.wall_end,
                )
            )
        next_episode = episodes[-1].index + 1 if episodes else 0
        for k, t in enumerate(trials):
            lap = lap_result(t, self.metadata.control_rate_hz, 0.0)
            self.metrics.append(
                metric_entry(
                    episode=next_episode,
                    trial=k + 1,
                    phase="evaluation",
                    reward=sum(t.rewards),
                    progress=lap.completion_pct,
                    status=t.status,
                    start_s=t.wall_start,
                    end_s=t.wall_end,
                )
            )
        write_simtrace(self.run.simtrace / f"{iteration - 1}-iteration.csv", rows)
        write_metrics(self.run.metrics, self.metrics)
        numbers = {k: v for k, v in stats.items() if isinstance(v, int | float)}
        self.tensorboard.scalars(iteration, numbers)
        self.tensorboard.images(
            iteration, "observations", observations[:: max(len(observations) // 4, 1)][:4]
        )
        self.tensorboard.flush()

    def close(self) -> None:
        self.tensorboard.close()
