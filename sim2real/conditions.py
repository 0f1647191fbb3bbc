"""The conditions of the sim2real robustness map: a grid of worlds the real car meets and
the simulator can pin down exactly.

Four axes: lighting (the camera image's gain and gamma, as a lamp or the sun changes it),
texture (floor, road and background looks), camera pose (pitch and height of the mount,
the lens) and battery level (state of charge: a drained pack sags and the car slows).
Each `Condition` is one level of one axis, the others at their nominal value, and owns
the `WorldConfig` of that level; `trainer.sweep` drives a policy through each of them.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

from sim2real.battery import BatteryConfig
from sim2real.world import Lighting, WorldConfig

AXES = ("lighting", "texture", "camera", "battery")
"""Sweep axes in display order."""


@dataclass(frozen=True)
class Condition:
    """One condition of the sweep: an axis, a level label, and what it changes."""

    axis: str
    """Which axis this level belongs to."""
    label: str
    """Short label shown in the map."""
    nominal: bool = False
    """True for the axis' nominal level (what training saw without randomization)."""
    gain: float = 1.0
    """Lighting: image gain (1 = as rendered)."""
    gamma: float = 1.0
    """Lighting: image gamma (1 = as rendered)."""
    style: dict[str, Any] = field(default_factory=dict)
    """Texture: `TextureStyle` field overrides."""
    camera: dict[str, Any] = field(default_factory=dict)
    """Camera pose: `CameraConfig` field overrides."""
    battery_soc: float | None = None
    """Battery: initial state of charge (None: ideal supply)."""

    def world(self) -> WorldConfig:
        """The `sim2real.world.WorldConfig` of this condition."""
        base = WorldConfig()
        return replace(
            base,
            camera=replace(base.camera, **self.camera),
            style=replace(base.style, **self.style),
            battery=None
            if self.battery_soc is None
            else BatteryConfig(initial_soc=self.battery_soc),
            lighting=Lighting(gain=self.gain, gamma=self.gamma),
        )


def default_conditions() -> list[Condition]:
    """The standard grid: six levels per axis, the nominal one among them."""
    return [
        Condition("lighting", "very dark ×0.25", gain=0.25, gamma=1.4),
        Condition("lighting", "dark ×0.45", gain=0.45, gamma=1.2),
        Condition("lighting", "dim ×0.7", gain=0.7, gamma=1.1),
        Condition("lighting", "nominal", nominal=True),
        Condition("lighting", "bright ×1.3", gain=1.3, gamma=0.9),
        Condition("lighting", "glare ×1.8", gain=1.8, gamma=0.75),
        Condition(
            "texture", "plain room", style={"floor_kind": "plain", "background_kind": "plain"}
        ),
        Condition(
            "texture", "concrete", style={"floor_kind": "concrete", "floor_bgr": (150, 150, 150)}
        ),
        Condition("texture", "nominal", nominal=True),
        Condition(
            "texture",
            "tiles, light road",
            style={"floor_kind": "tiles", "road_bgr": (105, 105, 110)},
        ),
        Condition(
            "texture",
            "barriers, red carpet",
            style={
                "background_kind": "barriers",
                "floor_kind": "carpet",
                "floor_bgr": (60, 60, 140),
            },
        ),
        Condition(
            "texture",
            "shadows, thin lines",
            style={"shadows": 4, "border_width_m": 0.03, "centre_width_m": 0.025},
        ),
        Condition("camera", "pitch 8°", camera={"pitch_deg": 8.0}),
        Condition("camera", "low 9 cm", camera={"height_m": 0.09}),
        Condition("camera", "nominal", nominal=True),
        Condition("camera", "high 13 cm", camera={"height_m": 0.13}),
        Condition("camera", "pitch 22°", camera={"pitch_deg": 22.0}),
        # the real DeepRacer lens is far wider than the simulator's (compat reference 6.3)
        Condition("camera", "fisheye 120°", camera={"model": "fisheye", "hfov_deg": 120.0}),
        Condition("battery", "full 100 %", battery_soc=1.0),
        Condition("battery", "75 %", battery_soc=0.75),
        Condition("battery", "nominal (ideal)", nominal=True),
        Condition("battery", "50 %", battery_soc=0.5),
        Condition("battery", "30 %", battery_soc=0.3),
        Condition("battery", "empty 5 %", battery_soc=0.05),
    ]
