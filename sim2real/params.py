"""DeepRacer's reward `params` dict and the episode rules behind it (progress with its
wrap-around fixes, the reverse and immobilized counters, the termination statuses),
reproduced from deepracer-simapp as recorded in shared/reference/deepracer-compat.md 1.1-1.4.

`EpisodeProgress` is the per-episode state machine (`sim2real.laps.LapTracker` builds lap
counting and lap times on it); `build_params` assembles the dict a reward function receives.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from sim2real.lookup import TrackPosition

DOCUMENTED_KEYS = (
    "all_wheels_on_track",
    "x",
    "y",
    "heading",
    "distance_from_center",
    "is_left_of_center",
    "progress",
    "steps",
    "speed",
    "steering_angle",
    "track_width",
    "track_length",
    "waypoints",
    "closest_waypoints",
    "is_reversed",
    "is_offtrack",
    "is_crashed",
    "closest_objects",
    "objects_location",
    "objects_left_of_center",
    "objects_speed",
    "objects_heading",
    "objects_distance",
)
"""Keys listed in the AWS DeepRacer reward-function input documentation."""
EXTRA_KEYS = ("objects_distance_from_center", "object_in_camera", "projection_distance", "sim_time")
"""Keys present in the current simapp code but not in the documentation."""

NUMBER_OF_REVERSE_COUNTS = 15
"""Consecutive steps of falling progress that end an episode as `reversed`."""
IMMOBILIZED_STEPS = 15
"""Consecutive steps of (almost) no motion that end an episode as `immobilized`."""
IMMOBILIZED_DISTANCE_M = 0.0003
"""Motion per step at or below this counts as not moving (0.3 mm)."""

# DeepRacer's EpisodeStatus strings.
PREPARE = "prepare"
IN_PROGRESS = "in_progress"
LAP_COMPLETE = "lap_complete"
OFF_TRACK = "off_track"
REVERSED = "reversed"
IMMOBILIZED = "immobilized"
CRASHED = "crashed"
TIME_UP = "time_up"
STATUS_LABELS = {
    PREPARE: "Prepare",
    IN_PROGRESS: "In progress",
    LAP_COMPLETE: "Lap complete",
    OFF_TRACK: "Off track",
    REVERSED: "Reversed",
    IMMOBILIZED: "Immobilized",
    CRASHED: "Crashed",
    TIME_UP: "Time up",
}
"""Status string -> label used in DeepRacer's metrics JSON."""


def corrected_progress(raw_fraction: float, prev_progress: float) -> float:
    """simapp `compute_current_prog`: percent progress from (ndist - start_ndist), with the
    finish-line wrap fixes and the cap at 100."""
    current = 100.0 * raw_fraction
    if current <= 0.0:
        current += 100.0
    if prev_progress > current + 50.0:
        current += 100.0
    if current > prev_progress + 50.0:
        current -= 100.0
    return min(current, 100.0)


@dataclass
class EpisodeProgress:
    """Progress and the termination rules over one episode."""

    start_ndist: float = 0.0
    """Lap fraction where the episode started (the spawn point's projection)."""
    steps: int = 0
    """Steps so far, the prepare step included (DeepRacer's `steps`)."""
    progress: float = 0.0
    """Current progress, percent."""
    reverse_count: int = 0
    """Consecutive run steps with falling progress."""
    still_count: int = 0
    """Consecutive run steps with (almost) no motion."""
    laps: int = 0
    """Completed laps (hardware-in-the-loop keeps driving after a lap)."""

    def reset(self, start_ndist: float) -> None:
        """Start an episode at a lap fraction."""
        self.start_ndist = start_ndist
        self.steps = 0
        self.progress = 0.0
        self.reverse_count = 0
        self.still_count = 0
        self.laps = 0

    def update(self, ndist: float, moved_m: float | None) -> float:
        """Account one step at normalised distance `ndist`; `moved_m` is how far the car
        moved this step (None on the prepare step). Returns progress in percent."""
        self.steps += 1
        prev = self.progress
        current = corrected_progress(ndist - self.start_ndist, prev)
        if moved_m is not None:
            self.reverse_count = self.reverse_count + 1 if current < prev else 0
            self.still_count = self.still_count + 1 if moved_m <= IMMOBILIZED_DISTANCE_M else 0
        self.progress = current
        return current

    def status(self, wheels_on_road: list[bool]) -> str:
        """The status of the step just accounted, checked in DeepRacer's order."""
        if self.progress >= 100.0:
            return LAP_COMPLETE
        if not any(wheels_on_road):
            return OFF_TRACK
        if self.reverse_count >= NUMBER_OF_REVERSE_COUNTS:
            return REVERSED
        if self.still_count >= IMMOBILIZED_STEPS:
            return IMMOBILIZED
        return IN_PROGRESS

    def next_lap(self) -> None:
        """After a completed lap, keep going (hardware-in-the-loop, continuous evaluation):
        the previous progress restarts at 0 as in the simapp."""
        self.laps += 1
        self.progress = 0.0


def build_params(
    *,
    x_m: float,
    y_m: float,
    heading_rad: float,
    position: TrackPosition,
    progress: float,
    steps: int,
    speed_mps: float,
    steer_deg: float,
    wheels_on_road: list[bool],
    is_offtrack: bool,
    track_length_m: float,
    waypoints: list[tuple[float, float]],
    is_reversed: bool,
    sim_time_s: float,
) -> dict[str, Any]:
    """DeepRacer's reward `params` for one step (a fresh dict; the caller may hand it out)."""
    return {
        "all_wheels_on_track": all(wheels_on_road),
        "x": x_m,
        "y": y_m,
        "heading": math.degrees(heading_rad),
        "distance_from_center": position.distance_from_center_m,
        "is_left_of_center": position.is_left_of_center,
        "progress": progress,
        "steps": steps,
        "speed": speed_mps,
        "steering_angle": steer_deg,
        "track_width": position.track_width_m,
        "track_length": track_length_m,
        "waypoints": list(waypoints),
        "closest_waypoints": [position.prev_waypoint, position.next_waypoint],
        "is_reversed": is_reversed,
        "is_offtrack": is_offtrack,
        "is_crashed": False,
        "closest_objects": [0, 0],
        "objects_location": [],
        "objects_left_of_center": [],
        "objects_speed": [],
        "objects_heading": [],
        "objects_distance": [],
        "objects_distance_from_center": [],
        "object_in_camera": False,
        "projection_distance": position.ndist * track_length_m,
        "sim_time": sim_time_s,
    }


def closest_waypoint(params: dict[str, Any]) -> int:
    """The simtrace `closest_waypoint` column: whichever of prev/next is nearer the car."""
    prev, nxt = params["closest_waypoints"]
    wps = params["waypoints"]
    x, y = params["x"], params["y"]
    dp = math.hypot(x - wps[prev][0], y - wps[prev][1])
    dn = math.hypot(x - wps[nxt][0], y - wps[nxt][1])
    return nxt if dn < dp else prev
