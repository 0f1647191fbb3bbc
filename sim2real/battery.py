"""The drive battery and its effect on speed: a 2S LiPo whose state of charge falls with use,
its open-circuit voltage curve, the sag under load, and the achieved-speed factor.

A hobby ESC drives the motor with a duty cycle, so for the same throttle command the motor's
speed scales with the pack voltage: a car calibrated on a fresh pack drives slower as the
pack drains. `Battery.speed_scale()` is that factor, relative to the voltage at which the
speed commands were calibrated; the world multiplies the commanded speed by it.
All parameters are plain fields so the randomizer can draw them per episode.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from sim2real.errors import SimConfigError

# Open-circuit voltage of one LiPo cell against state of charge (typical discharge curve
# at low current; 3.0 V cut-off region excluded).
_SOC_POINTS = np.array([0.0, 0.05, 0.10, 0.20, 0.30, 0.40, 0.50, 0.60, 0.70, 0.80, 0.90, 1.0])
_CELL_OCV_V = np.array([3.27, 3.61, 3.69, 3.73, 3.77, 3.79, 3.82, 3.87, 3.92, 3.98, 4.06, 4.20])


def cell_open_circuit_v(soc: float) -> float:
    """Open-circuit voltage of one LiPo cell at state of charge `soc` (0-1)."""
    return float(np.interp(min(max(soc, 0.0), 1.0), _SOC_POINTS, _CELL_OCV_V))


@dataclass(frozen=True)
class BatteryConfig:
    """A drive battery (default: DeepRacer's 7.4 V 2S 1100 mAh LiPo)."""

    cells: int = 2
    """Cells in series (2S)."""
    capacity_mah: float = 1100.0
    """Usable capacity, mAh."""
    initial_soc: float = 1.0
    """State of charge at the start of the episode, 0-1."""
    idle_current_a: float = 0.2
    """Current drawn while standing (ESC, servo holding)."""
    current_per_mps_a: float = 1.6
    """Extra current per m/s of speed (rolling resistance, motor losses)."""
    internal_resistance_ohm: float = 0.06
    """Pack internal resistance; the voltage sags by current x this."""
    calibrated_voltage_v: float = 7.9
    """Pack voltage at which commanded speeds were calibrated (speed_scale = 1 there)."""
    voltage_exponent: float = 1.0
    """speed_scale = (loaded voltage / calibrated voltage) ** this."""
    drain_multiplier: float = 1.0
    """Speeds up the drain (e.g. 30 to see a long session's drift within one episode)."""

    def __post_init__(self) -> None:
        if self.cells < 1 or self.capacity_mah <= 0 or not 0.0 <= self.initial_soc <= 1.0:
            raise SimConfigError(
                f"BatteryConfig: cells={self.cells}, capacity_mah={self.capacity_mah}, "
                f"initial_soc={self.initial_soc}: need cells >= 1, capacity > 0, soc in [0, 1]"
            )
        if self.calibrated_voltage_v <= 0 or self.drain_multiplier < 0:
            raise SimConfigError(
                f"BatteryConfig: calibrated_voltage_v={self.calibrated_voltage_v}, "
                f"drain_multiplier={self.drain_multiplier} must be positive"
            )


class Battery:
    """State of charge and voltage of one drive battery during an episode."""

    def __init__(self, config: BatteryConfig | None = None) -> None:
        self.config = config or BatteryConfig()
        self.soc = self.config.initial_soc
        """State of charge, 0-1."""
        self.current_a = self.config.idle_current_a
        """Current drawn during the last step, amperes."""

    def reset(self, config: BatteryConfig | None = None) -> None:
        """Start an episode (optionally with newly drawn parameters)."""
        if config is not None:
            self.config = config
        self.soc = self.config.initial_soc
        self.current_a = self.config.idle_current_a

    def open_circuit_v(self) -> float:
        """Pack voltage with no load."""
        return self.config.cells * cell_open_circuit_v(self.soc)

    def voltage_v(self) -> float:
        """Pack voltage under the last step's load."""
        return max(
            0.0, self.open_circuit_v() - self.current_a * self.config.internal_resistance_ohm
        )

    def speed_scale(self) -> float:
        """Achieved speed / commanded speed due to the pack voltage."""
        ratio = self.voltage_v() / self.config.calibrated_voltage_v
        return ratio**self.config.voltage_exponent if ratio > 0 else 0.0

    def drain(self, speed_mps: float, dt_s: float) -> None:
        """Draw current for `dt_s` seconds while driving at `speed_mps`."""
        c = self.config
        self.current_a = c.idle_current_a + c.current_per_mps_a * abs(speed_mps)
        used_mah = self.current_a * dt_s / 3.6 * c.drain_multiplier
        self.soc = max(0.0, self.soc - used_mah / c.capacity_mah)
