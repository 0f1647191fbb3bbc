"""The simulated world without the Gymnasium wrapper: one track, one car (dynamics and
battery), and the camera renderer. Hardware-in-the-loop runs, evaluation and the env all
drive the car through this class.

Typical use (hardware-in-the-loop: the car's own software decides, the world moves):

    world = World(track)                       # a tracks.Track
    world.place_on_centerline(0.0)             # at the start line, facing forward
    for _ in range(n):
        frame = world.render()                 # (120, 160) uint8 gray, what the camera sees
        obs = world.observe()                  # the same through vehicle.observation.preprocess
        world.step(steer_deg, speed_mps)       # one frame (1 / rate_hz) under a command
        pos = world.position()                 # projection, progress fraction, width, ...
        on = world.wheels_on_road()            # four bools, DeepRacer's off-track test

`World.advance(dt_s, ...)` integrates any duration; `World.dynamics.advance` takes physical
targets (wheel angle, speed) when they come from servo and ESC outputs rather than from
DeepRacer actions. Lap timing: `sim2real.laps.LapTracker` turns successive positions into
DeepRacer progress, off-track, lap completion and lap times:

    laps = LapTracker()
    laps.reset(world.position().ndist, world.pose[:2], 0.0)   # after placing the car
    ...each frame, after world.step(...):
    status = laps.update(world.position().ndist, world.pose[:2], world.wheels_on_road(),
                         world.dynamics.state.time_s)       # 'lap_complete', 'off_track', ...
    params = world.params(laps.progress, steer_deg, speed_mps)  # the reward function's dict
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from sim2real.battery import Battery, BatteryConfig
from sim2real.camera import CameraConfig
from sim2real.dynamics import REFERENCE_POINT_AHEAD_M, CarDynamics, DynamicsConfig
from sim2real.errors import SimConfigError
from sim2real.lookup import TrackLookup, TrackPosition
from sim2real.params import EpisodeProgress, build_params
from sim2real.renderer import CameraRenderer
from sim2real.scene import TrackScene
from sim2real.texture import TextureStyle
from tracks.track import Track
from vehicle.observation import CONTROL_RATE_HZ, preprocess

_LOOKUPS: dict[int, tuple[Track, TrackLookup]] = {}


def track_lookup(track: Track) -> TrackLookup:
    """The (cached) per-step lookup of a track; building one takes a fraction of a second."""
    hit = _LOOKUPS.get(id(track))
    if hit is not None and hit[0] is track:
        return hit[1]
    if len(_LOOKUPS) > 64:
        _LOOKUPS.clear()
    lookup = TrackLookup(track)
    _LOOKUPS[id(track)] = (track, lookup)
    return lookup


@dataclass(frozen=True)
class Lighting:
    """A fixed scene brightness: the camera image through a gain and a gamma, as a lamp or
    the sun changes it (the per-episode randomized kind is `sim2real.effects`)."""

    gain: float = 1.0
    """Image gain (1 = as rendered)."""
    gamma: float = 1.0
    """Image gamma (1 = as rendered)."""

    @property
    def nominal(self) -> bool:
        """True when the image is left as rendered."""
        return self.gain == 1.0 and self.gamma == 1.0

    def apply(self, image: np.ndarray) -> np.ndarray:
        """The uint8 image as this lighting shows it (the image itself when nominal)."""
        if self.nominal:
            return image
        levels = np.arange(256) / 255.0
        lut = np.clip(255.0 * self.gain * levels**self.gamma, 0, 255).astype(np.uint8)
        return lut[image]


@dataclass(frozen=True)
class WorldConfig:
    """Everything physical about a simulated run (defaults: DeepRacer-like, no randomization)."""

    rate_hz: float = CONTROL_RATE_HZ
    """Frames (and env steps) per second of simulated time."""
    dynamics: DynamicsConfig = field(default_factory=DynamicsConfig)
    """Car dynamics."""
    camera: CameraConfig = field(default_factory=CameraConfig)
    """Camera intrinsics and mounting."""
    battery: BatteryConfig | None = None
    """Drive battery; None is an ideal supply (achieved speed = commanded speed x gain)."""
    style: TextureStyle = field(default_factory=TextureStyle)
    """Look of the track and background."""
    lighting: Lighting = field(default_factory=Lighting)
    """Scene brightness applied to every observation (nominal: as rendered)."""

    def __post_init__(self) -> None:
        if not 1.0 <= self.rate_hz <= 240.0:
            raise SimConfigError(f"WorldConfig.rate_hz {self.rate_hz} is outside 1-240 Hz")


class World:
    """One track, one car, one camera."""

    def __init__(
        self,
        track: Track,
        config: WorldConfig | None = None,
        *,
        rng: np.random.Generator | None = None,
    ) -> None:
        self.config = config or WorldConfig()
        self.track = track
        self.lookup = track_lookup(track)
        self.geometry = self.lookup.geometry
        self.waypoints: list[tuple[float, float]] = track.waypoints
        """The centre line as DeepRacer's `params["waypoints"]` (built once)."""
        self._scene: TrackScene | None = None
        self._rng = rng
        self._renderers: dict[CameraConfig, CameraRenderer] = {}
        self.camera = self.config.camera
        self.dynamics = CarDynamics(self.config.dynamics)
        self.battery = Battery(self.config.battery) if self.config.battery else None
        self.place_on_centerline(0.0)

    # -- configuration ------------------------------------------------------------------
    @property
    def scene(self) -> TrackScene:
        """The texture atlas, painted on first use (laps without pictures never pay for it)."""
        if self._scene is None:
            self._scene = TrackScene(self.track.center, self.track.inner, self.track.outer)
            self._scene.repaint(self.config.style, self._rng or np.random.default_rng(0))
        return self._scene

    def renderer(self, camera: CameraConfig | None = None) -> CameraRenderer:
        """The renderer of a camera configuration (built once, then cached)."""
        cam = camera or self.camera
        r = self._renderers.get(cam)
        if r is None:
            if len(self._renderers) > 32:
                self._renderers.clear()
            r = self._renderers[cam] = CameraRenderer(self.scene, cam)
        return r

    def set_camera(self, camera: CameraConfig) -> None:
        """Use another camera configuration from now on."""
        self.camera = camera

    def set_physics(
        self, dynamics: DynamicsConfig | None = None, battery: BatteryConfig | None = None
    ) -> None:
        """Replace dynamics and battery parameters (takes effect at the next `place`)."""
        if dynamics is not None:
            self.dynamics.config = dynamics
        self.battery = Battery(battery) if battery is not None else None

    # -- pose -------------------------------------------------------------------------
    @property
    def pose(self) -> tuple[float, float, float]:
        """Model origin (x_m, y_m, heading_rad)."""
        s = self.dynamics.state
        return s.x_m, s.y_m, s.heading_rad

    def reference_point(self) -> tuple[float, float]:
        """DeepRacer's reward point, 0.14 m ahead of the model origin."""
        return self.dynamics.state.reference_point()

    def place(self, x_m: float, y_m: float, heading_rad: float, speed_mps: float = 0.0) -> None:
        """Put the car's model origin at (x, y) facing `heading_rad`, wheels straight."""
        for name, v in (("x_m", x_m), ("y_m", y_m), ("heading_rad", heading_rad)):
            if not math.isfinite(v):
                raise SimConfigError(f"World.place: {name} = {v} is not a finite number")
        self.dynamics.reset(float(x_m), float(y_m), float(heading_rad), speed_mps=speed_mps)
        if self.battery is not None:
            self.battery.reset()

    def centerline_pose(self, ndist: float) -> tuple[float, float, float]:
        """DeepRacer's spawn pose at a lap fraction: on the centre line, facing the next
        centre-line waypoint."""
        g = self.geometry
        arc = (ndist % 1.0 if self.track.closed else min(max(ndist, 0.0), 1.0)) * g.length_m
        p = g.point_at(np.array([arc]))[0]
        cum = g.cumulative_m
        nxt = int(np.searchsorted(cum, arc, side="right"))
        n = len(cum)
        # The next waypoint strictly ahead (skip repeated rows and the loop's closing row).
        target = None
        for k in range(nxt, nxt + n):
            idx = k % n if self.track.closed else min(k, n - 1)
            q = self.track.center[idx]
            if math.hypot(q[0] - p[0], q[1] - p[1]) > 1e-6:
                target = q
                break
        heading = (
            math.atan2(target[1] - p[1], target[0] - p[0])
            if target is not None
            else float(g.heading_at(np.array([arc]))[0])
        )
        return float(p[0]), float(p[1]), heading

    def place_on_centerline(self, ndist: float) -> None:
        """Spawn at a lap fraction as DeepRacer does (see `centerline_pose`)."""
        self.place(*self.centerline_pose(ndist))

    # -- time ---------------------------------------------------------------------------
    @property
    def dt_s(self) -> float:
        """Duration of one frame, seconds."""
        return 1.0 / self.config.rate_hz

    def step(self, steer_deg: float, speed_mps: float) -> None:
        """Advance one frame under a commanded steering (deg, + left) and speed (m/s)."""
        self.advance(self.dt_s, steer_deg, speed_mps)

    def advance(self, dt_s: float, steer_deg: float, speed_mps: float) -> None:
        """Advance `dt_s` seconds under a command (clipped and delayed by the dynamics)."""
        scale = self.battery.speed_scale() if self.battery is not None else 1.0
        self.dynamics.step(steer_deg, speed_mps, dt_s, speed_scale=scale)
        if self.battery is not None:
            self.battery.drain(self.dynamics.state.speed_mps, dt_s)

    # -- sensing --------------------------------------------------------------------------
    def render(self, *, color: bool = False, camera: CameraConfig | None = None) -> np.ndarray:
        """The camera frame at the current pose: (H, W) gray or (H, W, 3) BGR uint8."""
        x, y, th = self.pose
        return self.renderer(camera).render(x, y, th, color=color)

    def observe(self) -> np.ndarray:
        """The model's observation: the frame through `vehicle.observation.preprocess`,
        under the configured lighting."""
        return self.config.lighting.apply(preprocess(self.render()))

    def position(self) -> TrackPosition:
        """Track position of DeepRacer's reference point (0.14 m ahead of the origin)."""
        return self.lookup.position(*self.reference_point())

    def params(
        self,
        progress: EpisodeProgress,
        steer_deg: float,
        speed_mps: float,
        *,
        is_reversed: bool = False,
        position: TrackPosition | None = None,
        wheels: list[bool] | None = None,
        off_track: bool | None = None,
    ) -> dict[str, Any]:
        """DeepRacer's reward `params` for the current pose, after `progress.update(...)`
        accounted this step; `steer_deg` / `speed_mps` are the commanded action.
        `off_track` defaults to "no wheel on the road" (DeepRacer's off-track rule)."""
        pos = position or self.position()
        wheels = wheels if wheels is not None else self.wheels_on_road()
        x, y = self.reference_point()
        s = self.dynamics.state
        return build_params(
            x_m=x,
            y_m=y,
            heading_rad=s.heading_rad,
            position=pos,
            progress=progress.progress,
            steps=progress.steps,
            speed_mps=speed_mps,
            steer_deg=steer_deg,
            wheels_on_road=wheels,
            is_offtrack=(not any(wheels)) if off_track is None else off_track,
            track_length_m=self.lookup.length_m,
            waypoints=self.waypoints,
            is_reversed=is_reversed,
            sim_time_s=s.time_s,
        )

    def wheels_on_road(self) -> list[bool]:
        """Whether each wheel centre (left rear, left front, right rear, right front) is on
        the road polygon."""
        return self.lookup.on_road(self.dynamics.wheel_centres())


__all__ = ["REFERENCE_POINT_AHEAD_M", "Lighting", "World", "WorldConfig", "track_lookup"]
