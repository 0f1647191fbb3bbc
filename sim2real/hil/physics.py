"""The simulated car's servo, ESC, motor and drive battery: pulse widths in, wheel angle
and speed out, and the calibration a careful `racer calibrate` session would find on it.

- servo: the wheel angle follows the pulse width linearly around the servo's own
  mechanical centre (not necessarily the calibrated one), saturating at its end stops;
- ESC + motor: a deadband around the ESC's own neutral, forward below neutral (the
  DeepRacer ESC's polarity), speed = top speed x throttle^exponent x battery factor,
  reaching it with a first-order lag;
- battery: `sim2real.battery` (the one LiPo model of the simulator): it sags under load
  and drains; the board's ADC reads it through the 20k/10k divider with a little noise.

Laptop-only (hardware-in-the-loop); the firmware sees this only through pin duties and
the ADC of `sim2real.hil.board`.
"""

from __future__ import annotations

import math
import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from sim2real.battery import Battery, BatteryConfig
from vehicle.pulses import (
    AbsoluteMapping,
    BatteryCompensation,
    ChannelCalibration,
    PulseCalibration,
    SpeedCurve,
)

ADC_DIVIDER = 3.0
"""Battery volts per ADC-pin volt (vehicle/firmware/board.py: 20 kOhm over 10 kOhm)."""


def _hil_battery() -> BatteryConfig:
    return BatteryConfig(initial_soc=0.95, calibrated_voltage_v=7.9)


@dataclass(frozen=True)
class PhysicsConfig:
    """The simulated servo, ESC, motor and battery (their *true* properties, which the
    calibration has to find)."""

    servo_center_us: float = 1455.0
    """Pulse width at which the wheels point straight ahead."""
    servo_us_per_deg: float = 8.5
    """Pulse width change per degree of wheel angle (positive pulse change = left)."""
    servo_limit_deg: float = 32.0
    """Mechanical end stop of the steering, degrees."""
    esc_neutral_us: float = 1446.0
    """The ESC's neutral pulse."""
    esc_deadband_us: float = 10.0
    """No motion within +-this of neutral."""
    esc_full_forward_us: float = 1311.0
    """Pulse of full forward throttle (below neutral: DeepRacer ESC polarity)."""
    top_speed_mps: float = 4.0
    """Speed at full throttle on a battery at `battery.calibrated_voltage_v`."""
    throttle_exponent: float = 1.4
    """Speed grows as throttle^this (drag, motor curve)."""
    speed_time_constant_s: float = 0.25
    """First-order lag of speed toward its target."""
    battery: BatteryConfig = field(default_factory=_hil_battery)
    """The drive battery (2S 1100 mAh LiPo at 95 % charge; top speed measured at 7.9 V)."""
    adc_noise_v: float = 0.002
    """Noise on the ADC pin voltage (1 sigma)."""


class CarPhysics:
    """Servo, ESC, motor and battery: pulse widths in, wheel angle and speed out."""

    def __init__(self, config: PhysicsConfig | None = None, seed: int = 0) -> None:
        self.config = config or PhysicsConfig()
        self.rng = random.Random(seed)
        c = self.config
        self.battery = Battery(c.battery)
        """State of charge, load current and voltage of the drive battery."""
        self.steer_us = c.servo_center_us
        self.throttle_us = c.esc_neutral_us
        self.steer_deg = 0.0
        """Wheel angle, degrees, positive = left (the servo reaches its target at once;
        the car dynamics add the servo's lag)."""
        self.speed_mps = 0.0
        """Ground speed, m/s (reverse is negative)."""
        self.odometer_m = 0.0
        """Distance driven."""
        self.lock = threading.Lock()
        self._clock: Callable[[], float] | None = None
        self._clock_t = 0.0

    def steer_target_deg(self, steer_us: float) -> float:
        c = self.config
        deg = (steer_us - c.servo_center_us) / c.servo_us_per_deg
        return max(-c.servo_limit_deg, min(c.servo_limit_deg, deg))

    def throttle_fraction(self, throttle_us: float) -> float:
        """ESC: pulse -> throttle in [-1, 1] (+ forward), with its deadband."""
        c = self.config
        span = c.esc_neutral_us - c.esc_full_forward_us  # > 0: forward is below neutral
        delta = c.esc_neutral_us - throttle_us
        if abs(delta) <= c.esc_deadband_us:
            return 0.0
        mag = (abs(delta) - c.esc_deadband_us) / (span - c.esc_deadband_us)
        return math.copysign(min(1.0, mag), delta)

    def battery_v(self) -> float:
        """Loaded pack voltage."""
        return self.battery.voltage_v()

    def speed_target_mps(self, throttle_us: float) -> float:
        c = self.config
        t = self.throttle_fraction(throttle_us)
        return math.copysign(
            c.top_speed_mps
            * abs(t) ** c.throttle_exponent
            * self.battery_v()
            / c.battery.calibrated_voltage_v,
            t,
        )

    def set_pulses(self, steer_us: float, throttle_us: float) -> None:
        """New pulse widths; when following a clock, the time since the last update is
        first integrated under the old ones."""
        with self.lock:
            self._catch_up_locked()
            self.steer_us = steer_us
            self.throttle_us = throttle_us

    def follow_clock(self, clock: Callable[[], float] = time.monotonic) -> None:
        """Integrate in real time (`racer calibrate --sim`): `catch_up()` advances to
        `clock()`, and every pulse change first integrates up to its own moment, so a
        physics thread the machine starves of CPU loses no distance (a speed test's
        odometer reads what the pulses drove, however late the thread wakes)."""
        with self.lock:
            self._clock = clock
            self._clock_t = clock()

    def catch_up(self) -> None:
        """Integrate up to the followed clock's present (no-op without `follow_clock`)."""
        with self.lock:
            self._catch_up_locked()

    def _catch_up_locked(self) -> None:
        if self._clock is not None:
            now = self._clock()
            self._advance_locked(now - self._clock_t)
            self._clock_t = now

    def advance(self, dt_s: float) -> None:
        """Integrate `dt_s` seconds under the present pulses (speed lag, battery drain)."""
        with self.lock:
            self._advance_locked(dt_s)

    def _advance_locked(self, dt_s: float) -> None:
        c = self.config
        self.steer_deg = self.steer_target_deg(self.steer_us)
        target = self.speed_target_mps(self.throttle_us)
        k = 1.0 - math.exp(-dt_s / c.speed_time_constant_s)
        v0 = self.speed_mps
        self.speed_mps = v0 + (target - v0) * k
        # the exact integral of the first-order lag, so one long step drives as far as
        # many short ones
        self.odometer_m += abs(target * dt_s - (target - v0) * c.speed_time_constant_s * k)
        self.battery.drain(self.speed_mps, dt_s)

    def adc_pin_v(self) -> float:
        """The battery monitor's pin voltage (behind the divider, with noise)."""
        return self.battery_v() / ADC_DIVIDER + self.rng.gauss(0.0, self.config.adc_noise_v)


def sim_calibration(
    physics: PhysicsConfig | None = None,
) -> tuple[PulseCalibration, AbsoluteMapping]:
    """What a careful `racer calibrate` session finds on the simulated car: the servo
    centre and +-31 deg end points, the ESC's neutral and ends, and the speed curve and
    battery compensation measured on the physical model."""
    p = physics or PhysicsConfig()
    nominal_v = p.battery.calibrated_voltage_v
    lock_deg = min(31.0, p.servo_limit_deg)
    steer = ChannelCalibration(
        int(round(p.servo_center_us - lock_deg * p.servo_us_per_deg)),
        int(round(p.servo_center_us)),
        int(round(p.servo_center_us + lock_deg * p.servo_us_per_deg)),
        1,
    )
    span = p.esc_neutral_us - p.esc_full_forward_us
    throttle = ChannelCalibration(
        int(round(p.esc_full_forward_us)),
        int(round(p.esc_neutral_us)),
        int(round(p.esc_neutral_us + span)),
        -1,
    )
    cal = PulseCalibration(steer, throttle)
    car = CarPhysics(p)
    # steady-state speed per throttle command at the nominal voltage
    points = []
    for c in np.linspace(0.1, 1.0, 10):
        pulse = throttle.pulse_us(float(c))
        v = car.speed_target_mps(pulse) * nominal_v / car.battery_v()
        points.append((round(float(c), 3), round(v, 4)))
    top = points[-1][1]
    battery = BatteryCompensation(
        tuple((v, round(top * v / nominal_v, 4)) for v in (6.8, 7.4, 7.9, 8.4))
    )
    mapping = AbsoluteMapping(SpeedCurve(tuple(points), nominal_v), lock_deg, battery)
    return cal, mapping
