"""What the simulator knows that the camera does not: the privileged state a critic may see.

An asymmetric actor-critic (Pinto et al. 2018, arXiv 1710.06542) trains the policy on
camera frames while its value function sees the true state of the world. Only the policy
is exported, so the car still needs nothing but its camera; the critic just has to judge
"how good is this moment" well enough for the policy's advantages to be right. From pixels
that judgement is hard and noisy, above all under domain randomization, where the grip,
the motor gain and the battery change from episode to episode and no frame shows them.

`privileged_state(world, position, progress)` returns `STATE_FEATURES` in that order,
each scaled to about -1..1:

- the car on the track: signed offset of DeepRacer's reference point from the centre line
  (left positive) over the half width, heading error to the centre line (sin, cos), actual
  speed, actual steering angle, yaw rate;
- the road ahead: how much the centre line turns between here and 0.5, 1, 1.5, 2, 3 and
  4 m ahead (radians / pi, left positive);
- the episode: lap progress (the lap bonus comes at 100 %);
- what randomization hid: grip limit, speed gain, the battery's speed scale, steering
  misalignment, actuation latency, the half width of the road here.

`RaceEnv` puts the vector in every step's `info["state"]` (and the reset's), so the
simulator workers hand it to the learner with the episode.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import numpy as np

from sim2real.dynamics import wrap_angle

if TYPE_CHECKING:
    from sim2real.lookup import TrackPosition
    from sim2real.params import EpisodeProgress
    from sim2real.world import World

LOOKAHEAD_M = (0.5, 1.0, 1.5, 2.0, 3.0, 4.0)
"""Distances ahead at which the centre line's turn is reported."""

STATE_FEATURES = (
    "offset",
    "heading_error_sin",
    "heading_error_cos",
    "speed",
    "steer",
    "yaw_rate",
    *(f"turn_{d:g}m" for d in LOOKAHEAD_M),
    "progress",
    "grip",
    "speed_gain",
    "battery_scale",
    "steer_offset",
    "latency",
    "half_width",
)
STATE_SIZE = len(STATE_FEATURES)


def privileged_state(
    world: World, position: TrackPosition, progress: EpisodeProgress
) -> np.ndarray:
    """The `STATE_FEATURES` of `world` now (see the module docstring), float32."""
    s = world.dynamics.state
    cfg = world.dynamics.config
    g = world.geometry
    arc = position.arc_m
    half = max(0.5 * position.track_width_m, 1e-3)
    # Sign of the offset: which side of the centre line's direction the reference point is.
    track_heading = float(g.heading_at(np.array([arc]))[0])
    rx, ry = world.reference_point()
    side = math.cos(track_heading) * (ry - position.center_y_m) - math.sin(track_heading) * (
        rx - position.center_x_m
    )
    offset = math.copysign(position.distance_from_center_m, side) / half
    error = wrap_angle(s.heading_rad - track_heading)
    ahead = g.heading_at(arc + np.asarray(LOOKAHEAD_M))
    turns = [wrap_angle(float(h) - track_heading) / math.pi for h in ahead]
    battery = world.battery.speed_scale() if world.battery is not None else 1.0
    values = [
        max(-2.0, min(2.0, offset)),
        math.sin(error),
        math.cos(error),
        s.speed_mps / 4.0,
        s.steer_rad / math.radians(cfg.max_steer_deg),
        max(-2.0, min(2.0, s.yaw_rate_rps / 5.0)),
        *turns,
        progress.progress / 100.0,
        cfg.max_lateral_accel_mps2 / 8.0,
        cfg.speed_gain,
        battery,
        cfg.steer_offset_deg / 10.0,
        cfg.latency_frames / 3.0,
        half / 0.5,
    ]
    return np.asarray(values, dtype=np.float32)


__all__ = ["LOOKAHEAD_M", "STATE_FEATURES", "STATE_SIZE", "privileged_state"]
