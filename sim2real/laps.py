"""Lap bookkeeping for one car on one track: DeepRacer's progress rules
(`sim2real.params.EpisodeProgress`) fed with where the car is and how far it moved, the
start-line crossing that completes a lap, and each lap's time in simulated seconds.
The Gymnasium env and the hardware-in-the-loop session both count laps with `LapTracker`.

    laps = LapTracker()
    laps.reset(start_ndist, world.pose[:2], time_s)    # after placing the car
    ...each frame, after the world moved:
    status = laps.update(world.position().ndist, world.pose[:2], world.wheels_on_road(), time_s)
    if status == LAP_COMPLETE:
        laps.next_lap()                                 # keep driving from the same line

A lap completes on the step whose progress reaches 100 % (the start line crossed forwards);
driving backwards over the line makes progress negative and never counts.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from sim2real.params import LAP_COMPLETE, EpisodeProgress


@dataclass(frozen=True)
class LapInfo:
    """Where the car is in its laps (simulated seconds)."""

    lap_times_s: tuple[float, ...]
    """Complete laps, in order, to the millisecond."""
    current_s: float
    """Time into the current lap."""
    off_track: int
    """Times the car left the track and was put back on it."""

    @property
    def laps_completed(self) -> int:
        return len(self.lap_times_s)


class LapTracker:
    """Progress, completed laps and lap times of one car (see the module docstring)."""

    def __init__(self) -> None:
        self.progress = EpisodeProgress()
        """DeepRacer's progress and termination counters (the reward params read it)."""
        self.lap_times_s: list[float] = []
        """Durations of the completed laps, simulated seconds, in order."""
        self.lap_start_s = 0.0
        """Simulated time at which the current lap started."""
        self.time_s = 0.0
        """Simulated time of the last update."""
        self.off_track = 0
        """Times the car was put back on the track (`put_back`)."""
        self._origin_xy = (0.0, 0.0)
        self._lap_recorded = False

    def reset(self, start_ndist: float, origin_xy: tuple[float, float], time_s: float) -> None:
        """Start counting: the start line at lap fraction `start_ndist`, the car's model
        origin at `origin_xy` (m), the clock at `time_s`."""
        self.progress.reset(start_ndist)
        self.lap_times_s = []
        self.lap_start_s = self.time_s = time_s
        self.off_track = 0
        self._origin_xy = origin_xy
        self._lap_recorded = False

    def prepare(self, ndist: float) -> float:
        """DeepRacer's prepare step: account the starting position (no motion counted);
        returns progress in percent."""
        return self.progress.update(ndist, None)

    def update(
        self,
        ndist: float,
        origin_xy: tuple[float, float],
        wheels_on_road: list[bool],
        time_s: float,
    ) -> str:
        """Account one step: the reference point at lap fraction `ndist`, the model origin
        now at `origin_xy`, the clock at `time_s`. Returns DeepRacer's status of the step;
        on `lap_complete` the lap's time is recorded (once, until `next_lap`)."""
        moved_m = math.hypot(origin_xy[0] - self._origin_xy[0], origin_xy[1] - self._origin_xy[1])
        self._origin_xy = origin_xy
        self.time_s = time_s
        self.progress.update(ndist, moved_m)
        status = self.progress.status(wheels_on_road)
        if status == LAP_COMPLETE and not self._lap_recorded:
            self.lap_times_s.append(time_s - self.lap_start_s)
            self._lap_recorded = True
        return status

    def next_lap(self) -> None:
        """After `lap_complete`: keep driving; the next lap starts now, over the same line
        (progress restarts at 0, as in the simapp)."""
        self.progress.next_lap()
        self.lap_start_s = self.time_s
        self._lap_recorded = False

    def put_back(self, origin_xy: tuple[float, float]) -> None:
        """The car left the track and was carried back to `origin_xy` (DeepRacer's
        evaluation rule: clock running, progress kept): counted, and the next step's
        motion is measured from there."""
        self.off_track += 1
        self._origin_xy = origin_xy

    @property
    def laps_completed(self) -> int:
        return len(self.lap_times_s)

    @property
    def current_lap_s(self) -> float:
        """Time into the current lap, simulated seconds."""
        return self.time_s - self.lap_start_s

    def info(self) -> LapInfo:
        """A snapshot for displays and reports, lap times rounded to the millisecond."""
        return LapInfo(
            tuple(round(t, 3) for t in self.lap_times_s),
            max(0.0, self.current_lap_s),
            self.off_track,
        )
