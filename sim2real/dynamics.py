"""Car dynamics: a kinematic bicycle model with DeepRacer's 1/18 geometry.

Owns the car's physical state (pose of the model origin, actual speed and steering) and how
commands turn into motion: clipping to DeepRacer's limits (steering +-30 deg, speed
0.1-4 m/s), an actuation latency of whole frames, a steering offset, first-order lags on
speed (motor + ESC) and steering (servo), a speed gain, and a lateral-acceleration limit
beyond which the car understeers (it follows a wider arc than the wheels ask for).

Frames: world x, y in metres (the track file's frame), heading in radians counter-clockwise
from +x. The *model origin* sits midway between the axles as in DeepRacer's URDF (rear axle
0.0817 m behind it, front steering hinges 0.0823 m ahead); DeepRacer's reward point is
0.14 m ahead of it. Integration is exact along circular arcs over substeps no longer than
`max_substep_s`, so it is stable at 4 m/s at any frame rate.

Pure Python `math` on scalars: a step costs a few microseconds, far less than numpy on
one car would.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass

from sim2real.errors import SimConfigError

REFERENCE_POINT_AHEAD_M = 0.14
"""DeepRacer's reward reference point lies this far ahead of the model origin."""


@dataclass(frozen=True)
class DynamicsConfig:
    """Physical parameters of the simulated car (defaults: DeepRacer 1/18, no imperfections)."""

    wheelbase_m: float = 0.164
    """Distance between rear axle and front steering hinges (DeepRacer URDF: 0.164 m)."""
    wheel_track_m: float = 0.162
    """Distance between left and right wheel centres (DeepRacer URDF: 0.162 m)."""
    rear_axle_behind_origin_m: float = 0.0817
    """How far the rear axle sits behind the model origin (DeepRacer URDF: 0.0817 m)."""
    max_steer_deg: float = 30.0
    """Steering commands are clipped to +-this (DeepRacer: 30 deg)."""
    min_speed_mps: float = 0.1
    """Speed commands are clipped to at least this (DeepRacer: 0.1 m/s)."""
    max_speed_mps: float = 4.0
    """Speed commands are clipped to at most this (DeepRacer: 4 m/s)."""
    speed_time_constant_s: float = 0.15
    """First-order lag of actual speed toward the target speed (motor, ESC, inertia)."""
    steer_time_constant_s: float = 0.06
    """First-order lag of the wheels' steering angle toward the command (servo)."""
    latency_frames: int = 0
    """Actuation latency in whole frames: a command takes effect this many steps later."""
    steer_offset_deg: float = 0.0
    """Mechanical steering misalignment added to every command (positive = left)."""
    speed_gain: float = 1.0
    """Achieved speed / commanded speed on an ideal supply (calibration error)."""
    max_lateral_accel_mps2: float = 8.0
    """Grip limit: above this lateral acceleration the car understeers onto a wider arc."""
    max_substep_s: float = 1.0 / 60.0
    """Longest integration substep; a 15 Hz frame is integrated in 4 substeps."""

    def __post_init__(self) -> None:
        checks = [
            ("wheelbase_m", self.wheelbase_m > 0),
            ("wheel_track_m", self.wheel_track_m > 0),
            ("max_steer_deg", 0 < self.max_steer_deg < 80),
            ("min_speed_mps", 0 <= self.min_speed_mps <= self.max_speed_mps),
            ("speed_time_constant_s", self.speed_time_constant_s >= 0),
            ("steer_time_constant_s", self.steer_time_constant_s >= 0),
            ("latency_frames", isinstance(self.latency_frames, int) and self.latency_frames >= 0),
            ("speed_gain", self.speed_gain > 0),
            ("max_lateral_accel_mps2", self.max_lateral_accel_mps2 > 0),
            ("max_substep_s", self.max_substep_s > 0),
        ]
        for name, ok in checks:
            if not ok:
                raise SimConfigError(
                    f"DynamicsConfig.{name} = {getattr(self, name)!r} is out of range; "
                    "see the field's docstring in sim2real/dynamics.py"
                )


@dataclass
class CarState:
    """Mutable physical state of one car (the model origin's pose and the actuators)."""

    x_m: float = 0.0
    """Model-origin x, metres."""
    y_m: float = 0.0
    """Model-origin y, metres."""
    heading_rad: float = 0.0
    """Yaw, radians, counter-clockwise from +x, wrapped to (-pi, pi]."""
    speed_mps: float = 0.0
    """Actual forward speed, m/s."""
    steer_rad: float = 0.0
    """Actual front-wheel steering angle, radians, positive = left."""
    yaw_rate_rps: float = 0.0
    """Yaw rate over the last step, rad/s."""
    time_s: float = 0.0
    """Simulated time since the last reset, seconds."""

    def reference_point(self) -> tuple[float, float]:
        """DeepRacer's reward point: 0.14 m ahead of the model origin."""
        return (
            self.x_m + REFERENCE_POINT_AHEAD_M * math.cos(self.heading_rad),
            self.y_m + REFERENCE_POINT_AHEAD_M * math.sin(self.heading_rad),
        )


def wrap_angle(angle_rad: float) -> float:
    """Wrap an angle to (-pi, pi]."""
    a = math.fmod(angle_rad + math.pi, 2.0 * math.pi)
    if a <= 0.0:
        a += 2.0 * math.pi
    return a - math.pi


class CarDynamics:
    """One car's kinematic bicycle with lags, latency, offset and a grip limit."""

    def __init__(self, config: DynamicsConfig | None = None) -> None:
        self.config = config or DynamicsConfig()
        self.state = CarState()
        self._queue: deque[tuple[float, float]] = deque()
        self.applied_steer_deg = 0.0
        """The (clipped, delayed) steering command acting during the last step."""
        self.applied_speed_mps = 0.0
        """The (clipped, delayed) speed command acting during the last step."""

    def reset(
        self,
        x_m: float,
        y_m: float,
        heading_rad: float,
        *,
        speed_mps: float = 0.0,
        config: DynamicsConfig | None = None,
    ) -> None:
        """Place the car (model origin) at rest, or at `speed_mps`, with straight wheels."""
        if config is not None:
            self.config = config
        self.state = CarState(x_m=x_m, y_m=y_m, heading_rad=wrap_angle(heading_rad))
        self.state.speed_mps = speed_mps
        # Commands "issued" before the episode: stand still, wheels straight.
        self._queue = deque([(0.0, 0.0)] * self.config.latency_frames)
        self.applied_steer_deg = 0.0
        self.applied_speed_mps = 0.0

    def step(
        self, steer_cmd_deg: float, speed_cmd_mps: float, dt_s: float, speed_scale: float = 1.0
    ) -> None:
        """Advance by `dt_s` under a commanded steering (deg, + left) and speed (m/s).

        `speed_scale` multiplies the achieved speed (the battery's voltage factor).
        """
        c = self.config
        steer_cmd_deg = min(max(steer_cmd_deg, -c.max_steer_deg), c.max_steer_deg)
        if speed_cmd_mps > 0.0:
            speed_cmd_mps = min(max(speed_cmd_mps, c.min_speed_mps), c.max_speed_mps)
        else:
            speed_cmd_mps = 0.0  # a stop (used by hardware-in-the-loop), not a DeepRacer action
        if c.latency_frames:
            self._queue.append((steer_cmd_deg, speed_cmd_mps))
            steer_cmd_deg, speed_cmd_mps = self._queue.popleft()
        self.applied_steer_deg = steer_cmd_deg
        self.applied_speed_mps = speed_cmd_mps
        target_steer = math.radians(steer_cmd_deg + c.steer_offset_deg)
        target_speed = speed_cmd_mps * c.speed_gain * speed_scale
        self.advance(target_steer, target_speed, dt_s)

    def advance(self, target_steer_rad: float, target_speed_mps: float, dt_s: float) -> None:
        """Integrate `dt_s` toward physical targets (wheel angle, speed), no clipping or delay.

        Hardware-in-the-loop uses this directly when it derives the targets from servo and
        ESC outputs.
        """
        c = self.config
        s = self.state
        n = max(1, math.ceil(dt_s / c.max_substep_s - 1e-9))
        h = dt_s / n
        k_speed = 1.0 - math.exp(-h / c.speed_time_constant_s) if c.speed_time_constant_s else 1.0
        k_steer = 1.0 - math.exp(-h / c.steer_time_constant_s) if c.steer_time_constant_s else 1.0
        a = c.rear_axle_behind_origin_m
        inv_wheelbase = 1.0 / c.wheelbase_m
        grip = c.max_lateral_accel_mps2
        sin, cos = math.sin, math.cos
        speed, steer, th = s.speed_mps, s.steer_rad, s.heading_rad
        # The rear axle follows circular arcs; the origin is rigidly `a` ahead of it.
        cth, sth = cos(th), sin(th)
        rx, ry = s.x_m - a * cth, s.y_m - a * sth
        th0 = th
        for _ in range(n):
            v0 = speed
            speed = v0 + (target_speed_mps - v0) * k_speed
            steer = steer + (target_steer_rad - steer) * k_steer
            # Trapezoid over the substep (exact enough for the lag; a step change if no lag).
            v = 0.5 * (v0 + speed) if k_speed < 1.0 else speed
            curvature = math.tan(steer) * inv_wheelbase
            if v > 1e-6:
                limit = grip / (v * v)
                if curvature > limit:
                    curvature = limit
                elif curvature < -limit:
                    curvature = -limit
            ds = v * h
            dth = ds * curvature
            if abs(dth) > 1e-9:
                cth2, sth2 = cos(th + dth), sin(th + dth)
                rx += (sth2 - sth) / curvature
                ry += (cth - cth2) / curvature
                cth, sth = cth2, sth2
            else:
                rx += ds * cth
                ry += ds * sth
            th += dth
        s.speed_mps, s.steer_rad = speed, steer
        s.x_m = rx + a * cth
        s.y_m = ry + a * sth
        s.heading_rad = th
        total_turn = th - th0
        s.heading_rad = wrap_angle(s.heading_rad)
        s.yaw_rate_rps = total_turn / dt_s if dt_s > 0 else 0.0
        s.time_s += dt_s

    def wheel_centres(self) -> list[tuple[float, float]]:
        """World positions of the four wheel centres: left rear, left front, right rear,
        right front (DeepRacer's wheel links)."""
        s = self.state
        c = self.config
        ch, sh = math.cos(s.heading_rad), math.sin(s.heading_rad)
        half = 0.5 * c.wheel_track_m
        rear = -c.rear_axle_behind_origin_m
        front = c.wheelbase_m - c.rear_axle_behind_origin_m
        out = []
        for lon, lat in ((rear, half), (front, half), (rear, -half), (front, -half)):
            out.append((s.x_m + lon * ch - lat * sh, s.y_m + lon * sh + lat * ch))
        return out
