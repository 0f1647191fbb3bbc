"""A privileged pure-pursuit driver: it sees the track and the car's true pose, steers toward
a point a lookahead distance ahead on the centre line, and picks its speed from a
curvature-limited speed profile. Used by `racer sim view`, by tests (laps of every track),
and as an expert for imitation warm starts (`action_for` maps its command onto a DeepRacer
action space).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from sim2real.dynamics import DynamicsConfig
from sim2real.world import World
from tracks.racing_line import RacingLine, RacingLineConfig, racing_line
from tracks.track import Track
from vehicle.metadata import ActionSpace

_RACING_LINES: dict[tuple[str, bytes, float], RacingLine] = {}


def _racing_line_of(track: Track, margin_m: float) -> RacingLine:
    """The track's racing line keeping `margin_m` from the borders, computed once per
    process, track and margin."""
    key = (track.name, np.ascontiguousarray(track.center).tobytes(), margin_m)
    if key not in _RACING_LINES:
        _RACING_LINES[key] = racing_line(track, RacingLineConfig(margin_m=margin_m))
    return _RACING_LINES[key]


@dataclass(frozen=True)
class PurePursuitConfig:
    """Tuning of the pure-pursuit expert."""

    lookahead_m: float = 0.35
    """Lookahead distance at standstill, metres along the centre line."""
    lookahead_per_mps: float = 0.2
    """Extra lookahead per m/s of speed."""
    max_speed_mps: float = 1.5
    """Top speed on straights."""
    min_speed_mps: float = 0.5
    """Slowest commanded speed (tightest corners)."""
    lateral_accel_mps2: float = 2.0
    """Corner speed: sqrt(this / curvature)."""
    braking_mps2: float = 2.0
    """Deceleration the speed profile allows before a corner."""
    line: str = "centre"
    """Which line to follow: "centre" (the centre line at the speeds above) or "racing"
    (the track's racing line, `tracks.racing_line`, at its limit speed profile times
    `racing_speed_fraction`; the settings above other than the lookahead are then unused)."""
    racing_speed_fraction: float = 0.9
    """Share of the racing line's limit speed the "racing" expert drives at."""
    delay_frames: float = 1.0
    """For "racing": steer from the pose predicted this many frames ahead, for the
    actuation latency (`standard` randomization draws 0-2 frames). A fixed number rather
    than the episode's true latency (which the expert could read), so its command depends
    on the car's state alone, not on a hidden draw a camera-only student cannot learn."""
    racing_margin_m: float = 0.15
    """Distance the "racing" expert's line keeps from the borders beyond half the car's
    width (the yardstick line keeps 0.05 m): room for tracking error at racing speed."""

    def __post_init__(self) -> None:
        if self.line not in ("centre", "racing"):
            raise ValueError(f"line {self.line!r} is not 'centre' or 'racing'")
        if not 0.0 <= self.delay_frames <= 10.0:
            raise ValueError(f"delay_frames {self.delay_frames} must be in [0, 10]")
        if not 0.0 <= self.racing_margin_m <= 1.0:
            raise ValueError(f"racing_margin_m {self.racing_margin_m} must be in [0, 1] m")
        if not 0.0 < self.racing_speed_fraction <= 1.5:
            raise ValueError(
                f"racing_speed_fraction {self.racing_speed_fraction} must be in (0, 1.5]"
            )


class PurePursuit:
    """Pure pursuit on one world's track."""

    def __init__(self, world: World, config: PurePursuitConfig | None = None) -> None:
        self.world = world
        self.config = config or PurePursuitConfig()
        c = self.config
        g = world.geometry
        self.length_m = g.length_m
        self.closed = world.track.closed
        # Curvature-limited speed at each waypoint, smoothed by a backward braking pass.
        kappa = np.abs(g.curvature)
        cum = g.cumulative_m
        n = len(cum)
        window = np.array(
            [kappa[(cum >= cum[i] - 0.2) & (cum <= cum[i] + 0.3)].max() for i in range(n)]
        )
        v = np.sqrt(c.lateral_accel_mps2 / np.maximum(window, 1e-6))
        v = np.clip(v, c.min_speed_mps, c.max_speed_mps)
        for _ in range(2 if self.closed else 1):
            for i in range(n - 2, -1, -1):
                ds = cum[i + 1] - cum[i]
                v[i] = min(v[i], math.sqrt(v[i + 1] ** 2 + 2 * c.braking_mps2 * ds))
            if self.closed:
                v[-1] = v[0] = min(v[0], v[-1])
        self.speed_profile = v
        self._cum = cum
        self.racing: RacingLine | None = None
        if c.line == "racing":
            self.racing = _racing_line_of(world.track, c.racing_margin_m)

    def command(self) -> tuple[float, float]:
        """(steer_deg, speed_mps) for the world's current car pose."""
        w = self.world
        s = w.dynamics.state
        dyn: DynamicsConfig = w.dynamics.config
        c = self.config
        rear_x = s.x_m - dyn.rear_axle_behind_origin_m * math.cos(s.heading_rad)
        rear_y = s.y_m - dyn.rear_axle_behind_origin_m * math.sin(s.heading_rad)
        if self.racing is not None:
            # The racing expert steers from where the car will be when this command acts:
            # at racing speed a frame of latency is 0.2 m of road.
            delay_s = c.delay_frames * w.dt_s
            yaw_rate = s.speed_mps * math.tan(s.steer_rad) / dyn.wheelbase_m
            heading = s.heading_rad + 0.5 * yaw_rate * delay_s
            rear_x += s.speed_mps * delay_s * math.cos(heading)
            rear_y += s.speed_mps * delay_s * math.sin(heading)
            heading += 0.5 * yaw_rate * delay_s
            return self._racing_command(rear_x, rear_y, heading, s.speed_mps, dyn)
        arc = w.lookup.position(s.x_m, s.y_m).arc_m
        ahead = c.lookahead_m + c.lookahead_per_mps * max(s.speed_mps, 0.0)
        target_arc = arc + ahead
        if not self.closed:
            target_arc = min(target_arc, self.length_m)
        tx, ty = w.geometry.point_at(np.array([target_arc]))[0]
        dx, dy = tx - rear_x, ty - rear_y
        dist = math.hypot(dx, dy)
        alpha = math.atan2(dy, dx) - s.heading_rad
        steer = math.atan2(2.0 * dyn.wheelbase_m * math.sin(alpha), max(dist, 1e-3))
        steer_deg = max(-dyn.max_steer_deg, min(dyn.max_steer_deg, math.degrees(steer)))
        speed = float(np.interp(arc % self.length_m, self._cum, self.speed_profile))
        return steer_deg, speed

    def _racing_command(
        self, rear_x: float, rear_y: float, heading: float, speed: float, dyn: DynamicsConfig
    ) -> tuple[float, float]:
        line = self.racing
        assert line is not None
        c = self.config
        nearest = int(np.argmin(np.hypot(line.points[:, 0] - rear_x, line.points[:, 1] - rear_y)))
        arc = float(line.arc_m[nearest])
        ahead = c.lookahead_m + c.lookahead_per_mps * max(speed, 0.0)
        xs = np.append(line.arc_m, line.length_m) if line.closed else line.arc_m
        pts = np.vstack([line.points, line.points[:1]]) if line.closed else line.points
        vs = np.append(line.speed_mps, line.speed_mps[0]) if line.closed else line.speed_mps
        target = arc + ahead
        target = target % line.length_m if line.closed else min(target, float(xs[-1]))
        tx = float(np.interp(target, xs, pts[:, 0]))
        ty = float(np.interp(target, xs, pts[:, 1]))
        alpha = math.atan2(ty - rear_y, tx - rear_x) - heading
        dist = math.hypot(tx - rear_x, ty - rear_y)
        steer = math.atan2(2.0 * dyn.wheelbase_m * math.sin(alpha), max(dist, 1e-3))
        steer_deg = max(-dyn.max_steer_deg, min(dyn.max_steer_deg, math.degrees(steer)))
        # The speed a few tenths of a second ahead: commands take effect after the lag.
        soon = arc + 0.3 * max(speed, 0.5)
        soon = soon % line.length_m if line.closed else min(soon, float(xs[-1]))
        v = float(np.interp(soon, xs, vs)) * c.racing_speed_fraction
        return steer_deg, v

    def action_for(self, space: ActionSpace) -> int | np.ndarray:
        """The command mapped onto a DeepRacer action space: the nearest discrete action
        (steering weighted over speed), or the continuous [-1, 1]^2 vector."""
        steer, speed = self.command()
        if space.kind == "continuous":
            lo, hi = space.steer_range_deg
            u0 = 2.0 * (steer - lo) / (hi - lo) - 1.0
            lo, hi = space.speed_range_mps
            u1 = 2.0 * (speed - lo) / (hi - lo) - 1.0
            return np.clip(np.array([u0, u1], np.float32), -1.0, 1.0)
        best, best_cost = 0, math.inf
        smax = space.max_steer_deg
        vmax = space.max_speed_mps
        for i, a in enumerate(space.actions):
            cost = ((a.steer_deg - steer) / smax) ** 2 + 0.25 * ((a.speed_mps - speed) / vmax) ** 2
            if cost < best_cost:
                best, best_cost = i, cost
        return best
