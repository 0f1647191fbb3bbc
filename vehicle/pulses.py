"""Action -> pulse widths: per-channel pulse calibration, DeepRacer's car mapping, and the
absolute mode through a measured speed curve with battery compensation.

Runs on the car: numpy-free, pure Python. `calibration/` builds its calibration file on
these types; the drive loop takes them.

Units: pulse widths are integer microseconds (what the wire protocol carries). DeepRacer
stores nanoseconds; its factory defaults converted to microseconds are
steering 1200/1450/1700 polarity +1 and throttle 1311/1446/1604 polarity -1. The
throttle max 1 603 500 ns is 1603.5 us; it is rounded half-to-even to 1604 us: the
0.5 us difference is 0.3 % of the forward span, below what an ESC resolves.

Channel mapping (DeepRacer `servo_mgr.cpp`, compat reference 6.1): a normalized command
v in [-1, 1] is multiplied by the polarity; negative values interpolate from `mid` to
`min`, positive ones from `mid` to `max`; 0 gives `mid`. Steering +1 is full left
(DeepRacer angles are positive to the left); throttle +1 is full forward, which with the
default polarity -1 is a pulse *below* mid.

Two ways to turn (steer_deg, speed_mps) into normalized commands:
- `DeepRacerMapping` (DeepRacer's car, compat 6.1): relative steering
  steer / max|steer| of the action space; throttle = max_speed_fraction x f(speed) with
  f the parabola through (0, 0), (max/2, 0.8), (max, 1): f(s) = 2.2 x - 1.2 x^2, x = s/max.
  Absolute m/s are not reproduced (as on DeepRacer).
- `AbsoluteMapping`: steering by the car's measured full-lock angle, throttle by a fitted
  speed curve (throttle command -> m/s at a reference battery voltage), corrected for the
  present battery voltage by a top-speed-vs-voltage curve, so a model asking for 1.2 m/s
  gets 1.2 m/s on a full or a tired battery.
"""

from __future__ import annotations

import bisect
import math
from dataclasses import dataclass, field
from typing import Any

from vehicle.errors import PulseError

PULSE_MIN_US = 500
"""Lowest pulse width any channel may be calibrated to (hobby servo/ESC range)."""
PULSE_MAX_US = 2500
"""Highest pulse width any channel may be calibrated to."""


@dataclass(frozen=True)
class ChannelCalibration:
    """One PWM channel (steering servo or ESC): its pulse range and direction."""

    min_us: int
    """Pulse width at normalized -1 x polarity, microseconds (also the lower clamp)."""
    mid_us: int
    """Pulse width at 0: steering centred / ESC neutral, microseconds."""
    max_us: int
    """Pulse width at normalized +1 x polarity, microseconds (also the upper clamp)."""
    polarity: int = 1
    """+1 or -1: which side of mid a positive command goes to."""

    def __post_init__(self) -> None:
        for name in ("min_us", "mid_us", "max_us"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise PulseError(f"{name} {value!r} is not a number of microseconds")
            if not math.isfinite(value) or value != round(value):
                raise PulseError(f"{name} {value!r} must be a whole number of microseconds")
            object.__setattr__(self, name, int(value))
        if not PULSE_MIN_US <= self.min_us < self.mid_us < self.max_us <= PULSE_MAX_US:
            raise PulseError(
                f"pulse calibration min/mid/max {self.min_us}/{self.mid_us}/{self.max_us} us "
                f"must satisfy {PULSE_MIN_US} <= min < mid < max <= {PULSE_MAX_US}; "
                "recalibrate the channel"
            )
        if self.polarity not in (1, -1):
            raise PulseError(f"polarity {self.polarity!r} must be +1 or -1")

    def pulse_us(self, value: float) -> int:
        """Normalized command in [-1, 1] (clipped) -> pulse width in microseconds."""
        if not math.isfinite(value):
            raise PulseError(f"normalized command {value!r} is not finite")
        v = max(-1.0, min(1.0, float(value))) * self.polarity
        if v < 0:
            pulse = self.mid_us + v * (self.mid_us - self.min_us)
        else:
            pulse = self.mid_us + v * (self.max_us - self.mid_us)
        return int(round(pulse))

    def value(self, pulse_us: float) -> float:
        """Inverse of `pulse_us`: pulse width -> normalized command in [-1, 1]."""
        p = max(self.min_us, min(self.max_us, pulse_us))
        if p < self.mid_us:
            v = (p - self.mid_us) / (self.mid_us - self.min_us)
        else:
            v = (p - self.mid_us) / (self.max_us - self.mid_us)
        return v * self.polarity

    def clamp_us(self, pulse_us: float) -> int:
        """A pulse width clamped to [min_us, max_us]."""
        return int(round(max(self.min_us, min(self.max_us, pulse_us))))

    def to_dict(self) -> dict[str, int]:
        return {
            "min_us": self.min_us,
            "mid_us": self.mid_us,
            "max_us": self.max_us,
            "polarity": self.polarity,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ChannelCalibration:
        try:
            return cls(
                int(data["min_us"]),
                int(data["mid_us"]),
                int(data["max_us"]),
                int(data.get("polarity", 1)),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise PulseError(
                f"channel calibration {data!r} needs min_us, mid_us, max_us, polarity"
            ) from exc

    @classmethod
    def from_deepracer_ns(cls, data: dict[str, Any]) -> ChannelCalibration:
        """From DeepRacer's calibration.json channel {min, mid, max (ns), polarity}."""
        try:
            return cls(
                round(int(data["min"]) / 1000),
                round(int(data["mid"]) / 1000),
                round(int(data["max"]) / 1000),
                int(data.get("polarity", 1)),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise PulseError(
                f"DeepRacer channel calibration {data!r} needs integer min, mid, max (ns) "
                "and polarity"
            ) from exc

    def to_deepracer_ns(self) -> dict[str, int]:
        return {
            "min": self.min_us * 1000,
            "mid": self.mid_us * 1000,
            "max": self.max_us * 1000,
            "polarity": self.polarity,
        }


DEEPRACER_STEERING = ChannelCalibration(1200, 1450, 1700, 1)
"""DeepRacer factory steering servo: 1 200 000 / 1 450 000 / 1 700 000 ns, polarity +1."""
DEEPRACER_THROTTLE = ChannelCalibration(1311, 1446, 1604, -1)
"""DeepRacer factory ESC: 1 311 000 / 1 446 000 / 1 603 500 ns (1603.5 -> 1604 us), -1."""


@dataclass(frozen=True)
class PulseCalibration:
    """Both channels of the car. The firmware is armed with exactly these limits."""

    steering: ChannelCalibration = DEEPRACER_STEERING
    """Steering servo channel."""
    throttle: ChannelCalibration = DEEPRACER_THROTTLE
    """ESC channel."""

    def neutral_us(self) -> tuple[int, int]:
        """(steering centred, throttle neutral) pulse widths."""
        return self.steering.mid_us, self.throttle.mid_us

    def pulses_us(self, steer: float, throttle: float) -> tuple[int, int]:
        """Normalized (steer, throttle) in [-1, 1] -> (steer_us, throttle_us)."""
        return self.steering.pulse_us(steer), self.throttle.pulse_us(throttle)

    def to_dict(self) -> dict[str, Any]:
        return {"steering": self.steering.to_dict(), "throttle": self.throttle.to_dict()}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> PulseCalibration:
        return cls(
            ChannelCalibration.from_dict(data["steering"]),
            ChannelCalibration.from_dict(data["throttle"]),
        )


def deepracer_throttle_curve(speed_mps: float, max_speed_mps: float) -> float:
    """DeepRacer's throttle parabola: f(0)=0, f(max/2)=0.8, f(max)=1; clamped to [-1, 1]."""
    if max_speed_mps <= 0:
        raise PulseError(f"max speed {max_speed_mps} m/s of the action space must be > 0")
    x = speed_mps / max_speed_mps
    return max(-1.0, min(1.0, 2.2 * x - 1.2 * x * x))


def _check_fraction(max_speed_fraction: float) -> float:
    if not math.isfinite(max_speed_fraction) or not 0.0 <= max_speed_fraction <= 1.0:
        raise PulseError(
            f"max-speed fraction {max_speed_fraction!r} must be within [0, 1] (e.g. 0.5 for 50 %)"
        )
    return float(max_speed_fraction)


@dataclass(frozen=True)
class DeepRacerMapping:
    """DeepRacer's car mapping: relative steering, the throttle parabola, a max-speed
    fraction (the device console's max-speed slider / 100)."""

    max_steer_deg: float
    """The action space's largest |steering| (continuous: the larger |bound|)."""
    max_speed_mps: float
    """The action space's top speed: where the throttle curve reaches 1."""

    def normalized(
        self, steer_deg: float, speed_mps: float, max_speed_fraction: float
    ) -> tuple[float, float]:
        """(steer_deg, speed_mps) -> normalized (steer, throttle) in [-1, 1]."""
        frac = _check_fraction(max_speed_fraction)
        steer = max(-1.0, min(1.0, steer_deg / self.max_steer_deg))
        return steer, frac * deepracer_throttle_curve(speed_mps, self.max_speed_mps)


@dataclass(frozen=True)
class SpeedCurve:
    """Measured throttle command -> ground speed at a reference battery voltage. Fitted
    as a monotone piecewise-linear curve (pool-adjacent-violators over the points, so
    measurement noise cannot make it go backwards), through (0, 0)."""

    points: tuple[tuple[float, float], ...]
    """(normalized forward throttle in (0, 1], measured speed m/s) pairs."""
    reference_battery_v: float = 7.4
    """Battery voltage the points were measured at."""
    _knots: tuple[tuple[float, float], ...] = field(default=(), repr=False, compare=False)

    def __post_init__(self) -> None:
        pts = sorted((float(c), float(s)) for c, s in self.points)
        if len(pts) < 1:
            raise PulseError("speed curve needs at least one (throttle, m/s) point; measure it")
        for c, s in pts:
            if not (0.0 < c <= 1.0) or not (math.isfinite(s) and s >= 0.0):
                raise PulseError(
                    f"speed curve point ({c}, {s}): throttle must be in (0, 1] and speed >= 0 m/s"
                )
        if len({c for c, _ in pts}) != len(pts):
            raise PulseError(f"speed curve points {pts} repeat a throttle value; average them")
        if not self.reference_battery_v > 0:
            raise PulseError(f"reference battery voltage {self.reference_battery_v} must be > 0 V")
        # pool adjacent violators: the least-squares monotone fit
        blocks: list[list[float]] = []  # [sum_speed, count, first_index]
        for i, (_, s) in enumerate(pts):
            blocks.append([s, 1.0, float(i)])
            while len(blocks) > 1 and blocks[-2][0] / blocks[-2][1] > blocks[-1][0] / blocks[-1][1]:
                s2, n2, _ = blocks.pop()
                blocks[-1][0] += s2
                blocks[-1][1] += n2
        fitted: list[float] = []
        for total, n, _ in blocks:
            fitted += [total / n] * int(n)
        knots = [(0.0, 0.0)] + [(c, f) for (c, _), f in zip(pts, fitted, strict=True)]
        if knots[-1][1] <= 0:
            raise PulseError("speed curve never moves the car (all speeds 0); measure again")
        object.__setattr__(self, "points", tuple(pts))
        object.__setattr__(self, "_knots", tuple(knots))

    @property
    def top_speed_mps(self) -> float:
        """Fitted speed at the highest measured throttle."""
        return self._knots[-1][1]

    def speed_mps(self, throttle: float) -> float:
        """Fitted speed (m/s) at a normalized forward throttle (beyond the last point:
        the last speed)."""
        t = max(0.0, min(1.0, throttle))
        xs = [k[0] for k in self._knots]
        i = bisect.bisect_right(xs, t)
        if i >= len(xs):
            return self._knots[-1][1]
        (x0, y0), (x1, y1) = self._knots[i - 1], self._knots[i]
        return y0 + (y1 - y0) * (t - x0) / (x1 - x0)

    def throttle_for(self, speed_mps: float) -> float:
        """The smallest normalized throttle reaching `speed_mps` (clamped to the curve)."""
        if speed_mps <= 0:
            return 0.0
        if speed_mps >= self.top_speed_mps:
            return self._knots[-1][0]
        for (x0, y0), (x1, y1) in zip(self._knots, self._knots[1:], strict=False):
            if y1 >= speed_mps and y1 > y0:
                return x0 + (x1 - x0) * (speed_mps - y0) / (y1 - y0)
        return self._knots[-1][0]

    def to_dict(self) -> dict[str, Any]:
        return {
            "points": [list(p) for p in self.points],
            "reference_battery_v": self.reference_battery_v,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> SpeedCurve:
        return cls(
            tuple((float(c), float(s)) for c, s in data["points"]),
            float(data.get("reference_battery_v", 7.4)),
        )


@dataclass(frozen=True)
class BatteryCompensation:
    """Measured top speed vs battery voltage; the speed curve is scaled by
    top(v) / top(reference) (linear interpolation, flat outside the measured range)."""

    points: tuple[tuple[float, float], ...]
    """(battery voltage V, top speed m/s at full throttle) pairs, at least one."""

    def __post_init__(self) -> None:
        pts = sorted((float(v), float(s)) for v, s in self.points)
        if not pts or any(v <= 0 or s <= 0 or not math.isfinite(v + s) for v, s in pts):
            raise PulseError(
                f"battery compensation points {self.points!r} must be (volts > 0, m/s > 0) pairs"
            )
        object.__setattr__(self, "points", tuple(pts))

    def top_speed_mps(self, battery_v: float) -> float:
        """Interpolated top speed at `battery_v`."""
        pts = self.points
        if battery_v <= pts[0][0]:
            return pts[0][1]
        if battery_v >= pts[-1][0]:
            return pts[-1][1]
        i = bisect.bisect_right([p[0] for p in pts], battery_v)
        (v0, s0), (v1, s1) = pts[i - 1], pts[i]
        return s0 + (s1 - s0) * (battery_v - v0) / (v1 - v0)

    def factor(self, battery_v: float, reference_battery_v: float) -> float:
        """Speed at `battery_v` relative to the reference voltage (1.0 = same)."""
        return self.top_speed_mps(battery_v) / self.top_speed_mps(reference_battery_v)


@dataclass(frozen=True)
class AbsoluteMapping:
    """Absolute mode: the car drives the model's steering angle and m/s, through the
    measured steering lock and speed curve, with battery compensation."""

    speed_curve: SpeedCurve
    """Measured throttle -> m/s at the reference voltage."""
    max_steer_deg: float = 30.0
    """The car's measured steering angle at full lock (normalized +-1), degrees."""
    battery: BatteryCompensation | None = None
    """Top speed vs voltage; None: no compensation."""

    def normalized(
        self,
        steer_deg: float,
        speed_mps: float,
        max_speed_fraction: float,
        battery_v: float | None = None,
    ) -> tuple[float, float]:
        """(steer_deg, speed_mps) -> normalized (steer, throttle) in [-1, 1]."""
        frac = _check_fraction(max_speed_fraction)
        steer = max(-1.0, min(1.0, steer_deg / self.max_steer_deg))
        target = speed_mps * frac
        if self.battery is not None and battery_v is not None and battery_v > 0:
            target /= self.battery.factor(battery_v, self.speed_curve.reference_battery_v)
        return steer, self.speed_curve.throttle_for(target)

    def check(self, max_steer_deg: float, max_speed_mps: float) -> None:
        """Refuse an action space the car cannot drive as asked."""
        if max_steer_deg > self.max_steer_deg + 1e-6:
            raise PulseError(
                f"the model steers up to {max_steer_deg:g} deg but the car's calibrated full "
                f"lock is {self.max_steer_deg:g} deg; use the DeepRacer (relative) mapping "
                "or a model trained with a smaller steering range"
            )
        if max_speed_mps > self.speed_curve.top_speed_mps + 1e-6:
            raise PulseError(
                f"the model asks for up to {max_speed_mps:g} m/s but the calibrated speed "
                f"curve tops out at {self.speed_curve.top_speed_mps:g} m/s; extend the speed "
                "curve or use the DeepRacer (relative) mapping"
            )


ActionMapping = DeepRacerMapping | AbsoluteMapping


def action_pulses(
    mapping: ActionMapping,
    calibration: PulseCalibration,
    steer_deg: float,
    speed_mps: float,
    *,
    max_speed_fraction: float,
    battery_v: float | None = None,
) -> tuple[int, int, float, float]:
    """(steer_deg, speed_mps) -> (steer_us, throttle_us, steer, throttle): the pulse widths
    and the normalized commands they came from, via `mapping` and `calibration`."""
    if isinstance(mapping, AbsoluteMapping):
        steer, throttle = mapping.normalized(steer_deg, speed_mps, max_speed_fraction, battery_v)
    else:
        steer, throttle = mapping.normalized(steer_deg, speed_mps, max_speed_fraction)
    steer_us, throttle_us = calibration.pulses_us(steer, throttle)
    return steer_us, throttle_us, steer, throttle
