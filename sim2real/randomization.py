"""Domain randomization: what varies between episodes and frames, how much, and the cheap
per-frame image effects.

Knobs live in `RandomizationConfig` (frozen); `PRESETS` holds `none`, `light`, `standard`
and `heavy`; `resolve_randomization` accepts a preset name, a config, or a dict
`{"preset": "standard", <knob>: value, ...}` of per-knob overrides.

Everything is drawn from the generator the caller passes (the env's `np_random`), so the
same seed gives the same textures, camera, physics and frames. Costs are kept per episode
where the physics of the effect allows it:

- textures: a new procedural texture (road/floor pattern, colours, line widths, world-fixed
  shadows, background scene) is painted with probability `new_texture_prob` per episode,
  otherwise one is reused from a small pool (painting costs tens of milliseconds);
- lighting: brightness, contrast and gamma are drawn per episode and applied per frame as
  one lookup table; a camera-fixed sun flare and shadow are drawn per episode with
  albumentations (`RandomSunFlare`, `RandomShadow`) and applied per frame as an overlay
  and a mask;
- sensor noise uses a per-episode bank of noise images; motion blur picks a precomputed
  kernel; the full albumentations camera pipeline (noise, motion blur, JPEG artefacts,
  brightness/contrast) runs on a fraction `albumentations_prob` of the frames
  (`sim2real.effects` applies all of these).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

import numpy as np

from sim2real.battery import BatteryConfig
from sim2real.camera import CameraConfig
from sim2real.dynamics import DynamicsConfig
from sim2real.errors import SimConfigError
from sim2real.texture import BACKGROUND_KINDS, SURFACE_KINDS, TextureStyle


@dataclass(frozen=True)
class RandomizationConfig:
    """How much each aspect of the simulation varies (defaults: nothing varies)."""

    new_texture_prob: float = 0.0
    """Probability per episode of painting a fresh texture (else reuse one from the pool)."""
    texture_pool_size: int = 1
    """Textures kept for reuse; the first episodes fill the pool."""
    surface_kinds: tuple[str, ...] = ()
    """Road/floor patterns to draw from (empty: keep the base style's)."""
    colour_jitter: float = 0.0
    """0-1: how far road, floor, line and wall colours may move from the base style."""
    line_width_jitter: float = 0.0
    """Relative +- change of border and centre line widths."""
    max_shadows: int = 0
    """Up to this many world-fixed soft shadows painted on the ground."""
    background_kinds: tuple[str, ...] = ()
    """Background scenes to draw from (empty: keep the base style's)."""
    brightness: float = 0.0
    """Per-episode brightness offset, +- fraction of full scale."""
    contrast: float = 0.0
    """Per-episode contrast factor, 1 +- this."""
    gamma: float = 0.0
    """Per-episode gamma, exp(+- this)."""
    glare_prob: float = 0.0
    """Probability per episode of a camera-fixed sun flare (albumentations RandomSunFlare)."""
    image_shadow_prob: float = 0.0
    """Probability per episode of a camera-fixed shadow (albumentations RandomShadow)."""
    noise_std_max: float = 0.0
    """Sensor noise standard deviation, grey levels, drawn per episode in [0, this]."""
    motion_blur_prob: float = 0.0
    """Probability per frame of motion blur."""
    albumentations_prob: float = 0.0
    """Probability per frame of the albumentations camera pipeline (noise, blur, JPEG)."""
    camera_height_m: float = 0.0
    """Camera height jitter, +- metres."""
    camera_pitch_deg: float = 0.0
    """Camera pitch jitter, +- degrees."""
    camera_fov_deg: float = 0.0
    """Camera horizontal field-of-view jitter, +- degrees."""
    camera_pool_size: int = 1
    """Distinct jittered cameras kept per env (each costs a few milliseconds to build)."""
    latency_frames_max: int = 0
    """Actuation latency drawn per episode in [0, this] frames."""
    steer_offset_deg: float = 0.0
    """Steering misalignment, +- degrees."""
    speed_gain: float = 0.0
    """Achieved/commanded speed gain, 1 +- this."""
    lateral_accel_mps2: tuple[float, float] | None = None
    """Grip limit range (None: keep the base dynamics')."""
    time_constant_jitter: float = 0.0
    """Relative +- change of the speed and steering lags."""
    battery: bool = False
    """Simulate the drive battery (voltage sag slows the car as it drains)."""
    battery_soc_min: float = 1.0
    """Initial state of charge drawn in [this, 1]."""
    battery_drain_max: float = 1.0
    """Battery drain multiplier drawn in [1, this] (long sessions within one episode)."""

    def __post_init__(self) -> None:
        for name in (
            "new_texture_prob",
            "glare_prob",
            "image_shadow_prob",
            "motion_blur_prob",
            "albumentations_prob",
            "colour_jitter",
        ):
            v = getattr(self, name)
            if not 0.0 <= v <= 1.0:
                raise SimConfigError(f"randomization knob {name} = {v} must be within [0, 1]")
        for name in (
            "line_width_jitter",
            "brightness",
            "contrast",
            "gamma",
            "noise_std_max",
            "camera_height_m",
            "camera_pitch_deg",
            "camera_fov_deg",
            "steer_offset_deg",
            "speed_gain",
            "time_constant_jitter",
        ):
            if getattr(self, name) < 0:
                raise SimConfigError(
                    f"randomization knob {name} = {getattr(self, name)} must be >= 0"
                )
        if self.texture_pool_size < 1 or self.camera_pool_size < 1:
            raise SimConfigError("randomization pool sizes must be >= 1")
        for k in self.surface_kinds:
            if k not in SURFACE_KINDS:
                raise SimConfigError(f"surface kind {k!r} is not one of {SURFACE_KINDS}")
        for k in self.background_kinds:
            if k not in BACKGROUND_KINDS:
                raise SimConfigError(f"background kind {k!r} is not one of {BACKGROUND_KINDS}")
        if not 0.0 <= self.battery_soc_min <= 1.0 or self.battery_drain_max < 1.0:
            raise SimConfigError("battery_soc_min must be in [0, 1] and battery_drain_max >= 1")
        if self.speed_gain >= 1.0 or self.contrast >= 1.0 or self.brightness >= 1.0:
            raise SimConfigError("speed_gain, contrast and brightness jitters must be below 1")

    @property
    def enabled(self) -> bool:
        """Whether anything varies at all."""
        return self != RandomizationConfig()


PRESETS: dict[str, RandomizationConfig] = {
    "none": RandomizationConfig(),
    "light": RandomizationConfig(
        new_texture_prob=0.1,
        texture_pool_size=3,
        colour_jitter=0.15,
        line_width_jitter=0.1,
        brightness=0.08,
        contrast=0.1,
        gamma=0.1,
        noise_std_max=2.0,
        camera_height_m=0.005,
        camera_pitch_deg=1.0,
        camera_fov_deg=1.0,
        camera_pool_size=4,
        latency_frames_max=1,
        steer_offset_deg=0.5,
        speed_gain=0.05,
        time_constant_jitter=0.1,
        battery=True,
        battery_soc_min=0.7,
    ),
    "standard": RandomizationConfig(
        new_texture_prob=0.15,
        texture_pool_size=6,
        surface_kinds=SURFACE_KINDS,
        colour_jitter=0.35,
        line_width_jitter=0.25,
        max_shadows=3,
        background_kinds=BACKGROUND_KINDS,
        brightness=0.2,
        contrast=0.25,
        gamma=0.25,
        glare_prob=0.15,
        image_shadow_prob=0.15,
        noise_std_max=5.0,
        motion_blur_prob=0.1,
        albumentations_prob=0.03,
        camera_height_m=0.01,
        camera_pitch_deg=3.0,
        camera_fov_deg=4.0,
        camera_pool_size=8,
        latency_frames_max=2,
        steer_offset_deg=2.0,
        speed_gain=0.15,
        lateral_accel_mps2=(5.0, 10.0),
        time_constant_jitter=0.3,
        battery=True,
        battery_soc_min=0.3,
        battery_drain_max=5.0,
    ),
    "heavy": RandomizationConfig(
        new_texture_prob=0.3,
        texture_pool_size=8,
        surface_kinds=SURFACE_KINDS,
        colour_jitter=0.7,
        line_width_jitter=0.4,
        max_shadows=6,
        background_kinds=BACKGROUND_KINDS,
        brightness=0.35,
        contrast=0.45,
        gamma=0.45,
        glare_prob=0.35,
        image_shadow_prob=0.35,
        noise_std_max=12.0,
        motion_blur_prob=0.25,
        albumentations_prob=0.1,
        camera_height_m=0.02,
        camera_pitch_deg=6.0,
        camera_fov_deg=8.0,
        camera_pool_size=12,
        latency_frames_max=3,
        steer_offset_deg=4.0,
        speed_gain=0.3,
        lateral_accel_mps2=(3.5, 12.0),
        time_constant_jitter=0.5,
        battery=True,
        battery_soc_min=0.1,
        battery_drain_max=20.0,
    ),
}


def resolve_randomization(spec: Any) -> RandomizationConfig:
    """A preset name, a `RandomizationConfig`, None/False ('none'), True ('standard'), or a
    dict {"preset": name, knob: value, ...} of overrides."""
    if spec is None or spec is False:
        return PRESETS["none"]
    if spec is True:
        return PRESETS["standard"]
    if isinstance(spec, RandomizationConfig):
        return spec
    if isinstance(spec, str):
        if spec not in PRESETS:
            raise SimConfigError(f"randomize preset {spec!r} is not one of {list(PRESETS)}")
        return PRESETS[spec]
    if isinstance(spec, dict):
        spec = dict(spec)
        base = resolve_randomization(spec.pop("preset", "none"))
        known = {f.name for f in dataclasses.fields(RandomizationConfig)}
        unknown = sorted(set(spec) - known)
        if unknown:
            raise SimConfigError(f"randomize: unknown knob(s) {unknown}; knobs are {sorted(known)}")
        for k in ("surface_kinds", "background_kinds", "lateral_accel_mps2"):
            if isinstance(spec.get(k), list):
                spec[k] = tuple(spec[k])
        return dataclasses.replace(base, **spec)
    raise SimConfigError(
        f"randomize {spec!r}: expected a preset name {list(PRESETS)}, a dict of knobs, "
        "or a RandomizationConfig"
    )


def _jitter_bgr(rng: np.random.Generator, bgr: tuple[int, int, int], amount: float) -> tuple:
    if amount <= 0:
        return bgr
    base = np.asarray(bgr, np.float64)
    scale = np.exp(rng.uniform(-1.2, 1.2) * amount)  # overall lightness
    tint = 1.0 + rng.uniform(-0.6, 0.6, 3) * amount  # hue shift
    return tuple(int(v) for v in np.clip(base * scale * tint, 0, 255))


def draw_style(
    rng: np.random.Generator, base: TextureStyle, cfg: RandomizationConfig
) -> TextureStyle:
    """A texture style drawn around `base`."""
    j = cfg.colour_jitter
    lw = cfg.line_width_jitter

    def kind(current: str, kinds: tuple[str, ...]) -> str:
        return str(kinds[int(rng.integers(len(kinds)))]) if kinds else current

    def width(w: float) -> float:
        return float(np.clip(w * (1.0 + rng.uniform(-lw, lw)), 0.01, 0.2))

    return dataclasses.replace(
        base,
        road_kind=kind(base.road_kind, cfg.surface_kinds),
        road_bgr=_jitter_bgr(rng, base.road_bgr, j),
        road_contrast=float(base.road_contrast * np.exp(rng.uniform(-j, j))),
        floor_kind=kind(base.floor_kind, cfg.surface_kinds),
        floor_bgr=_jitter_bgr(rng, base.floor_bgr, 2.0 * j),
        floor_contrast=float(base.floor_contrast * np.exp(rng.uniform(-j, j))),
        border_bgr=_jitter_bgr(rng, base.border_bgr, 0.3 * j),
        border_width_m=width(base.border_width_m),
        centre_bgr=_jitter_bgr(rng, base.centre_bgr, 0.5 * j),
        centre_width_m=width(base.centre_width_m),
        dash_length_m=float(base.dash_length_m * (1.0 + rng.uniform(-lw, lw))),
        dash_gap_m=float(base.dash_gap_m * (1.0 + rng.uniform(-lw, lw))),
        shadows=int(rng.integers(0, cfg.max_shadows + 1)),
        shadow_strength=float(rng.uniform(0.2, 0.5)),
        background_kind=kind(base.background_kind, cfg.background_kinds),
        wall_bgr=_jitter_bgr(rng, base.wall_bgr, 2.0 * j),
        barrier_bgr=_jitter_bgr(rng, base.barrier_bgr, 2.0 * j),
        barrier_height_deg=float(base.barrier_height_deg * (1.0 + rng.uniform(-lw, lw))),
    )


def draw_camera(
    rng: np.random.Generator, base: CameraConfig, cfg: RandomizationConfig
) -> CameraConfig:
    """A camera pose drawn around `base` (values rounded so identical draws share a cache)."""
    return dataclasses.replace(
        base,
        height_m=round(base.height_m + rng.uniform(-1, 1) * cfg.camera_height_m, 4),
        pitch_deg=round(base.pitch_deg + rng.uniform(-1, 1) * cfg.camera_pitch_deg, 2),
        hfov_deg=round(base.hfov_deg + rng.uniform(-1, 1) * cfg.camera_fov_deg, 2),
    )


def draw_dynamics(
    rng: np.random.Generator, base: DynamicsConfig, cfg: RandomizationConfig
) -> DynamicsConfig:
    """Physics parameters drawn around `base`."""
    tc = cfg.time_constant_jitter
    lat = base.max_lateral_accel_mps2
    if cfg.lateral_accel_mps2 is not None:
        lat = float(rng.uniform(*cfg.lateral_accel_mps2))
    return dataclasses.replace(
        base,
        latency_frames=base.latency_frames + int(rng.integers(0, cfg.latency_frames_max + 1)),
        steer_offset_deg=base.steer_offset_deg + float(rng.uniform(-1, 1) * cfg.steer_offset_deg),
        speed_gain=base.speed_gain * float(1.0 + rng.uniform(-1, 1) * cfg.speed_gain),
        max_lateral_accel_mps2=lat,
        speed_time_constant_s=base.speed_time_constant_s * float(1.0 + rng.uniform(-tc, tc)),
        steer_time_constant_s=base.steer_time_constant_s * float(1.0 + rng.uniform(-tc, tc)),
    )


def draw_battery(
    rng: np.random.Generator, base: BatteryConfig | None, cfg: RandomizationConfig
) -> BatteryConfig | None:
    """Battery parameters for an episode (None when the battery is not simulated)."""
    if not cfg.battery:
        return base
    b = base or BatteryConfig()
    return dataclasses.replace(
        b,
        initial_soc=float(rng.uniform(cfg.battery_soc_min, 1.0)),
        capacity_mah=b.capacity_mah * float(rng.uniform(0.8, 1.1)),
        internal_resistance_ohm=b.internal_resistance_ohm * float(rng.uniform(0.7, 1.6)),
        drain_multiplier=float(rng.uniform(1.0, cfg.battery_drain_max)),
    )
