"""DeepRacer simtrace logs: the 17-column per-step CSV (deepracer-compat 2.1) written into the
DRfC single-worker folder layout (2.2), so deepracer-utils and other community tools read it
unchanged:

    <model>/training-simtrace/<iteration>-iteration.csv
    <model>/evaluation-<YYYYMMDDhhmmss>/evaluation-simtrace/0-iteration.csv

Rows are buffered per episode and appended with one `write` on a file opened with
O_APPEND, so several env processes (e.g. `gymnasium.vector.AsyncVectorEnv` workers) can
log into the same iteration file without tearing lines; the header is written by whoever
creates the file. Give each worker distinct episode numbers (the env does this from its
`worker_index` / `num_workers`).
"""

from __future__ import annotations

import os
import time
from pathlib import Path

from sim2real.errors import SimtraceError

COLUMNS = (
    "episode",
    "steps",
    "X",
    "Y",
    "yaw",
    "steer",
    "throttle",
    "action",
    "reward",
    "done",
    "all_wheels_on_track",
    "progress",
    "closest_waypoint",
    "track_len",
    "tstamp",
    "episode_status",
    "pause_duration",
)
"""The classic 17 simtrace columns, in DeepRacer's order."""
HEADER = ",".join(COLUMNS) + "\n"


def format_row(
    *,
    episode: int,
    steps: int,
    x: float,
    y: float,
    yaw_deg: float,
    steer_deg: float,
    throttle_mps: float,
    action: str,
    reward: float,
    done: bool,
    all_wheels_on_track: bool,
    progress: float,
    closest_waypoint: int,
    track_len_m: float,
    tstamp_s: float,
    episode_status: str,
    pause_duration_s: float = 0.0,
) -> str:
    """One CSV line with DeepRacer's number formats."""
    return (
        f"{episode},{steps},{x:.4f},{y:.4f},{yaw_deg:.4f},{steer_deg:.2f},{throttle_mps:.2f},"
        f"{action},{reward:.4f},{done},{all_wheels_on_track},{progress:.4f},"
        f"{closest_waypoint},{track_len_m:.2f},{tstamp_s:.3f},{episode_status},"
        f"{pause_duration_s:.2f}\n"
    )


class SimtraceWriter:
    """Appends simtrace rows for one model folder (training or evaluation phase)."""

    def __init__(
        self,
        model_dir: str | os.PathLike,
        *,
        phase: str = "training",
        iteration: int = 0,
        evaluation_stamp: str | None = None,
    ) -> None:
        if phase not in ("training", "evaluation"):
            raise SimtraceError(f"simtrace phase {phase!r} is not 'training' or 'evaluation'")
        self.model_dir = Path(model_dir)
        self.phase = phase
        self.iteration = int(iteration)
        self.evaluation_stamp = evaluation_stamp or time.strftime("%Y%m%d%H%M%S", time.gmtime())
        self._rows: list[str] = []

    @property
    def path(self) -> Path:
        """The CSV file rows currently go to."""
        if self.phase == "training":
            return self.model_dir / "training-simtrace" / f"{self.iteration}-iteration.csv"
        return (
            self.model_dir
            / f"evaluation-{self.evaluation_stamp}"
            / "evaluation-simtrace"
            / "0-iteration.csv"
        )

    def set_iteration(self, iteration: int) -> None:
        """Flush, then send further rows to `<iteration>-iteration.csv`."""
        self.flush()
        self.iteration = int(iteration)

    def add(self, row: str) -> None:
        """Buffer one formatted row (see `format_row`)."""
        self._rows.append(row)

    def flush(self) -> None:
        """Append the buffered rows to the CSV (creating it with its header)."""
        if not self._rows:
            return
        path = self.path
        data = "".join(self._rows).encode()
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            try:
                fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_EXCL, 0o644)
                data = HEADER.encode() + data
            except FileExistsError:
                fd = os.open(path, os.O_WRONLY | os.O_APPEND)
            try:
                os.write(fd, data)
            finally:
                os.close(fd)
        except OSError as exc:
            raise SimtraceError(
                f"{path}: cannot write the simtrace log ({exc.strerror}); check the folder "
                "exists and is writable, or pass simtrace_dir=None"
            ) from exc
        self._rows.clear()
