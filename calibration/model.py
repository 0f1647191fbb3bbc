"""The calibration data model: steering and throttle pulse widths, the speed curve, battery
compensation and camera settings, validated on construction, with dict (JSON) round trips
and a field-by-field diff.

Runs on the car: no Textual, no training stack. Every dataclass is frozen and checks itself
in `__post_init__`, so an invalid calibration cannot exist; editors (the Textual screens)
hold their own drafts and build a new value with `dataclasses.replace`, showing the
`CalibrationValueError` message when the draft is not yet consistent.

Pulse widths live in `vehicle.pulses.ChannelCalibration` (the type the drive loop and the
firmware's arm limits take); this module adds what a person measures around them: the
steering angles, the speed-test runs, battery points and camera settings, and turns them
into the `vehicle.pulses` objects the drive loop uses (`Calibration.pulses()`,
`Calibration.absolute_mapping()`). Semantics follow DeepRacer's servo node
(deepracer-compat.md 6.1): a normalised command v in [-1, 1] is multiplied by `polarity`;
negative values go from mid towards min, positive ones towards max. Steering v > 0 is
left; throttle v > 0 is forward.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field, fields
from typing import Any

from calibration.errors import CalibrationValueError
from vehicle.errors import PulseError
from vehicle.pulses import (
    DEEPRACER_STEERING,
    DEEPRACER_THROTTLE,
    PULSE_MAX_US,
    PULSE_MIN_US,
    AbsoluteMapping,
    BatteryCompensation,
    ChannelCalibration,
    PulseCalibration,
    SpeedCurve,
)

ANGLE_MAX_DEG = 60.0
"""Largest steering angle at either end that is plausible for a 1/18 car."""
ROTATIONS_DEG = (0, 90, 180, 270)
"""Camera rotations the camera module can apply."""


def _check_pulse(what: str, value: Any) -> None:
    if isinstance(value, bool) or not isinstance(value, int):
        raise CalibrationValueError(
            f"{what}: {value!r} is not a whole number of microseconds; use an integer "
            f"between {PULSE_MIN_US} and {PULSE_MAX_US}"
        )
    if not PULSE_MIN_US <= value <= PULSE_MAX_US:
        raise CalibrationValueError(
            f"{what}: {value} us is outside {PULSE_MIN_US}-{PULSE_MAX_US} us; servos and ESCs "
            "expect 1000-2000 us, so re-measure or re-import the value"
        )


def make_channel(
    what: str, min_us: Any, mid_us: Any, max_us: Any, polarity: Any
) -> ChannelCalibration:
    """A `ChannelCalibration`, checked field by field so the error names the bad one."""
    for name, value in (("min", min_us), ("mid", mid_us), ("max", max_us)):
        _check_pulse(f"{what} {name}", value)
    if not min_us < mid_us < max_us:
        raise CalibrationValueError(
            f"{what}: pulse widths must satisfy min < mid < max, got "
            f"min {min_us} us, mid {mid_us} us, max {max_us} us; set the centre/neutral "
            "between the two ends (or set both ends again)"
        )
    if isinstance(polarity, bool) or polarity not in (1, -1):
        raise CalibrationValueError(f"{what}: polarity {polarity!r} must be 1 or -1")
    try:
        return ChannelCalibration(min_us, mid_us, max_us, polarity)
    except PulseError as exc:  # pragma: no cover - the checks above are stricter
        raise CalibrationValueError(f"{what}: {exc}") from exc


def _pulse(channel: ChannelCalibration, v: float) -> int:
    if math.isnan(v) or not -1.0 <= v <= 1.0:
        raise CalibrationValueError(f"normalised command {v!r} is outside [-1, 1]")
    return channel.pulse_us(v)


@dataclass(frozen=True)
class SteeringCalibration:
    """Steering servo pulse widths (DeepRacer `Servo`) and the angles measured at each end."""

    channel: ChannelCalibration = DEEPRACER_STEERING
    """Pulse widths and polarity (+1: left is towards max_us)."""
    left_deg: float | None = None
    """Front-wheel angle measured at full left, degrees (None until measured)."""
    right_deg: float | None = None
    """Front-wheel angle measured at full right, degrees (None until measured)."""

    def __post_init__(self) -> None:
        if not isinstance(self.channel, ChannelCalibration):
            raise CalibrationValueError(
                f"steering channel {self.channel!r} is not a ChannelCalibration"
            )
        for name in ("left_deg", "right_deg"):
            value = getattr(self, name)
            if value is None:
                continue
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise CalibrationValueError(f"steering {name}: {value!r} is not a number")
            if not 0.0 < float(value) <= ANGLE_MAX_DEG:
                raise CalibrationValueError(
                    f"steering {name}: {value} degrees is outside (0, {ANGLE_MAX_DEG:g}]; "
                    "enter the angle of the wheels from straight ahead, as a positive number"
                )

    min_us = property(lambda self: self.channel.min_us, doc="Shortest pulse width.")
    mid_us = property(lambda self: self.channel.mid_us, doc="Pulse width pointing straight ahead.")
    max_us = property(lambda self: self.channel.max_us, doc="Longest pulse width.")
    polarity = property(lambda self: self.channel.polarity, doc="+1: left is towards max_us.")

    @property
    def left_us(self) -> int:
        """Pulse width at full left."""
        return self.channel.pulse_us(1.0)

    @property
    def right_us(self) -> int:
        """Pulse width at full right."""
        return self.channel.pulse_us(-1.0)

    @property
    def max_steer_deg(self) -> float | None:
        """The full-lock angle the car can promise both ways (smaller of the two ends)."""
        if self.left_deg is None or self.right_deg is None:
            return None
        return float(min(self.left_deg, self.right_deg))

    def pulse_us(self, steer: float) -> int:
        """Pulse width for a normalised steering command in [-1, 1] (positive = left)."""
        return _pulse(self.channel, steer)

    @classmethod
    def from_ends(
        cls,
        *,
        left_us: int,
        centre_us: int,
        right_us: int,
        left_deg: float | None = None,
        right_deg: float | None = None,
    ) -> SteeringCalibration:
        """Build from the three positions a person sets; the polarity follows from them."""
        if left_us == right_us:
            raise CalibrationValueError(
                f"steering: full left and full right are both {left_us} us; "
                "steer to each end and set it again"
            )
        polarity = 1 if left_us > right_us else -1
        lo, hi = min(left_us, right_us), max(left_us, right_us)
        channel = make_channel("steering", lo, centre_us, hi, polarity)
        return cls(channel=channel, left_deg=left_deg, right_deg=right_deg)


@dataclass(frozen=True)
class ThrottleCalibration:
    """ESC pulse widths (DeepRacer `Motor`): reverse max, neutral, forward max, polarity."""

    channel: ChannelCalibration = DEEPRACER_THROTTLE
    """Pulse widths and polarity (-1, DeepRacer's default: forward is below neutral)."""

    def __post_init__(self) -> None:
        if not isinstance(self.channel, ChannelCalibration):
            raise CalibrationValueError(
                f"throttle channel {self.channel!r} is not a ChannelCalibration"
            )

    min_us = property(lambda self: self.channel.min_us, doc="Shortest pulse width.")
    max_us = property(lambda self: self.channel.max_us, doc="Longest pulse width.")
    polarity = property(lambda self: self.channel.polarity, doc="+1: forward is towards max_us.")

    @property
    def neutral_us(self) -> int:
        """Pulse width at which the motor stops."""
        return self.channel.mid_us

    @property
    def forward_max_us(self) -> int:
        """Pulse width at full forward."""
        return self.channel.pulse_us(1.0)

    @property
    def reverse_max_us(self) -> int:
        """Pulse width at full reverse."""
        return self.channel.pulse_us(-1.0)

    def pulse_us(self, throttle: float) -> int:
        """Pulse width for a normalised throttle command in [-1, 1] (positive = forward)."""
        return _pulse(self.channel, throttle)

    @classmethod
    def from_ends(cls, *, forward_us: int, neutral_us: int, reverse_us: int) -> ThrottleCalibration:
        """Build from the three positions a person sets; the polarity follows from them."""
        if forward_us == reverse_us:
            raise CalibrationValueError(
                f"throttle: forward and reverse are both {forward_us} us; set them again"
            )
        polarity = 1 if forward_us > reverse_us else -1
        lo, hi = min(forward_us, reverse_us), max(forward_us, reverse_us)
        return cls(channel=make_channel("throttle", lo, neutral_us, hi, polarity))


@dataclass(frozen=True)
class SpeedPoint:
    """One run of the guided speed test: a forward command held for a time over a distance."""

    command: float
    """Normalised forward throttle command in (0, 1]."""
    duration_s: float
    """How long the command was held, seconds."""
    distance_m: float
    """Distance the car covered, measured with a tape, metres."""

    def __post_init__(self) -> None:
        if not 0.0 < self.command <= 1.0:
            raise CalibrationValueError(
                f"speed point: command {self.command!r} is outside (0, 1]; "
                "use a forward command such as 0.4"
            )
        if not 0.0 < self.duration_s <= 60.0:
            raise CalibrationValueError(
                f"speed point: duration {self.duration_s!r} s is outside (0, 60] s"
            )
        if not 0.0 < self.distance_m <= 500.0:
            raise CalibrationValueError(
                f"speed point: distance {self.distance_m!r} m is outside (0, 500] m; "
                "enter the distance in metres (e.g. 2.35)"
            )

    @property
    def speed_mps(self) -> float:
        """Mean speed over the run, m/s."""
        return self.distance_m / self.duration_s


@dataclass(frozen=True)
class SpeedMeasurements:
    """Measured (command -> m/s) runs; speed must rise with command. `fit()` is the
    `vehicle.pulses.SpeedCurve` the drive loop uses in absolute mode."""

    points: tuple[SpeedPoint, ...] = ()
    """Runs of the guided speed test, sorted by command."""
    reference_battery_v: float = 7.4
    """Battery voltage the runs were made at (the first run's voltage when known)."""

    def __post_init__(self) -> None:
        pts = tuple(sorted(self.points, key=lambda p: p.command))
        object.__setattr__(self, "points", pts)
        if not 3.0 <= self.reference_battery_v <= 20.0:
            raise CalibrationValueError(
                f"speed curve: reference battery {self.reference_battery_v!r} V is outside 3-20 V"
            )
        for a, b in zip(pts, pts[1:], strict=False):
            if a.command == b.command:
                raise CalibrationValueError(
                    f"speed curve: two runs at command {a.command:g}; "
                    "delete one (or repeat at another command)"
                )
            if b.speed_mps <= a.speed_mps:
                raise CalibrationValueError(
                    f"speed curve: not monotonic: command {b.command:g} gave "
                    f"{b.speed_mps:.2f} m/s, no faster than {a.speed_mps:.2f} m/s at command "
                    f"{a.command:g}; re-measure one of the two runs"
                )

    def with_point(self, point: SpeedPoint) -> SpeedMeasurements:
        """A new curve with `point` added, replacing any run at the same command."""
        kept = tuple(p for p in self.points if p.command != point.command)
        return SpeedMeasurements(kept + (point,), self.reference_battery_v)

    def without(self, command: float) -> SpeedMeasurements:
        """A new curve without the run at `command`."""
        kept = tuple(p for p in self.points if p.command != command)
        return SpeedMeasurements(kept, self.reference_battery_v)

    def fit(self) -> SpeedCurve | None:
        """The fitted curve (monotone, piecewise linear through (0, 0)); None without runs."""
        if not self.points:
            return None
        return SpeedCurve(
            tuple((p.command, p.speed_mps) for p in self.points), self.reference_battery_v
        )


@dataclass(frozen=True)
class BatteryPoint:
    """Top speed measured at one battery voltage."""

    battery_v: float
    """Drive-battery voltage when the point was recorded, volts."""
    top_speed_mps: float
    """Speed at full throttle at that voltage, m/s."""

    def __post_init__(self) -> None:
        if not 3.0 <= self.battery_v <= 20.0:
            raise CalibrationValueError(
                f"battery point: {self.battery_v!r} V is outside 3-20 V; "
                "is the battery connected and the voltage divider right?"
            )
        if not 0.0 < self.top_speed_mps <= 20.0:
            raise CalibrationValueError(
                f"battery point: top speed {self.top_speed_mps!r} m/s is outside (0, 20] m/s"
            )


@dataclass(frozen=True)
class BatteryMeasurements:
    """Measured top speed against battery voltage. `fit()` is the
    `vehicle.pulses.BatteryCompensation` with which the drive loop scales throttle so a
    tired battery still reaches the commanded speed."""

    points: tuple[BatteryPoint, ...] = ()
    """Recorded points, sorted by voltage."""

    def __post_init__(self) -> None:
        pts = tuple(sorted(self.points, key=lambda p: p.battery_v))
        object.__setattr__(self, "points", pts)
        for a, b in zip(pts, pts[1:], strict=False):
            if abs(a.battery_v - b.battery_v) < 0.05:
                raise CalibrationValueError(
                    f"battery compensation: points at {a.battery_v:.2f} V and "
                    f"{b.battery_v:.2f} V are less than 0.05 V apart; keep one of them"
                )

    def with_point(self, point: BatteryPoint) -> BatteryMeasurements:
        """A new table with `point` added, replacing any point within 0.05 V of it."""
        kept = tuple(p for p in self.points if abs(p.battery_v - point.battery_v) >= 0.05)
        return BatteryMeasurements(kept + (point,))

    def fit(self) -> BatteryCompensation | None:
        """The `vehicle.pulses.BatteryCompensation` the drive loop uses; None if empty."""
        if not self.points:
            return None
        return BatteryCompensation(tuple((p.battery_v, p.top_speed_mps) for p in self.points))


@dataclass(frozen=True)
class CameraSettings:
    """How the camera image is oriented and exposed before preprocessing."""

    rotation_deg: int = 0
    """Rotation applied to each frame: 0, 90, 180 or 270 degrees clockwise."""
    flip_horizontal: bool = False
    """Mirror left-right (after rotation)."""
    flip_vertical: bool = False
    """Mirror top-bottom (after rotation)."""
    exposure_us: int | None = None
    """Fixed exposure time in microseconds; None for automatic exposure."""
    analogue_gain: float | None = None
    """Fixed sensor gain (1.0-16.0); None for automatic gain."""

    def __post_init__(self) -> None:
        if self.rotation_deg not in ROTATIONS_DEG:
            raise CalibrationValueError(
                f"camera rotation {self.rotation_deg!r} must be one of 0, 90, 180, 270 degrees"
            )
        for name in ("flip_horizontal", "flip_vertical"):
            if not isinstance(getattr(self, name), bool):
                raise CalibrationValueError(
                    f"camera {name}: {getattr(self, name)!r} is not true/false"
                )
        if self.exposure_us is not None and not (
            isinstance(self.exposure_us, int) and 50 <= self.exposure_us <= 200_000
        ):
            raise CalibrationValueError(
                f"camera exposure {self.exposure_us!r} us is outside 50-200000 us; "
                "use null for automatic exposure"
            )
        if self.analogue_gain is not None and not 1.0 <= self.analogue_gain <= 16.0:
            raise CalibrationValueError(
                f"camera gain {self.analogue_gain!r} is outside 1.0-16.0; use null for automatic"
            )


@dataclass(frozen=True)
class Calibration:
    """Everything the car needs to turn actions into pulse widths and frames into images."""

    steering: SteeringCalibration = field(default_factory=SteeringCalibration)
    """Steering servo."""
    throttle: ThrottleCalibration = field(default_factory=ThrottleCalibration)
    """ESC."""
    speed: SpeedMeasurements = field(default_factory=SpeedMeasurements)
    """Measured speed curve (empty until the speed test has been run)."""
    battery: BatteryMeasurements = field(default_factory=BatteryMeasurements)
    """Battery compensation table (empty until recorded)."""
    camera: CameraSettings = field(default_factory=CameraSettings)
    """Camera orientation and exposure."""

    def pulses(self) -> PulseCalibration:
        """Both channels, as the drive loop and the firmware's arm limits take them."""
        return PulseCalibration(self.steering.channel, self.throttle.channel)

    def absolute_mapping(self) -> AbsoluteMapping | None:
        """The absolute (m/s, degrees) mapping, or None until the speed curve and both
        steering angles are measured (then only DeepRacer's relative mapping applies)."""
        curve = self.speed.fit()
        max_deg = self.steering.max_steer_deg
        if curve is None or max_deg is None:
            return None
        return AbsoluteMapping(curve, max_deg, self.battery.fit())

    # ---- dict (JSON) round trip -----------------------------------------------------

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict (without `schema_version`; the store adds it). The `fit` is
        written for readers that do not refit (it is `vehicle.pulses.SpeedCurve.to_dict`)."""
        fit = self.speed.fit()
        return {
            "steering": {
                **self.steering.channel.to_dict(),
                "left_deg": self.steering.left_deg,
                "right_deg": self.steering.right_deg,
            },
            "throttle": self.throttle.channel.to_dict(),
            "speed_curve": {
                "reference_battery_v": self.speed.reference_battery_v,
                "points": [asdict(p) for p in self.speed.points],
                "fit": None if fit is None else fit.to_dict(),
            },
            "battery": {"points": [asdict(p) for p in self.battery.points]},
            "camera": asdict(self.camera),
        }

    @classmethod
    def from_dict(cls, data: Any, *, source: str = "calibration") -> Calibration:
        """Build and validate from a dict as written by `to_dict`; `source` names the file
        in error messages. The speed fit is derived, so a stored `fit` is ignored."""
        try:
            if not isinstance(data, dict):
                raise CalibrationValueError(f"expected an object, got {type(data).__name__}")
            unknown = sorted(
                set(data) - {"steering", "throttle", "speed_curve", "battery", "camera"}
            )
            if unknown:
                raise CalibrationValueError(f"unknown section(s) {', '.join(unknown)}")
            steer = _fields(
                _section(data, "steering"), "steering", _CHANNEL_KEYS + ("left_deg", "right_deg")
            )
            steer_default = DEEPRACER_STEERING.to_dict()
            throttle = _fields(_section(data, "throttle"), "throttle", _CHANNEL_KEYS)
            throttle_default = DEEPRACER_THROTTLE.to_dict()
            speed = _fields(
                _section(data, "speed_curve"),
                "speed_curve",
                ("reference_battery_v", "points", "fit"),
            )
            battery = _fields(_section(data, "battery"), "battery", ("points",))
            return cls(
                steering=SteeringCalibration(
                    make_channel(
                        "steering", *(steer.get(k, steer_default[k]) for k in _CHANNEL_KEYS)
                    ),
                    left_deg=steer.get("left_deg"),
                    right_deg=steer.get("right_deg"),
                ),
                throttle=ThrottleCalibration(
                    make_channel(
                        "throttle", *(throttle.get(k, throttle_default[k]) for k in _CHANNEL_KEYS)
                    )
                ),
                speed=SpeedMeasurements(
                    tuple(_build(SpeedPoint, p) for p in _list(speed, "speed_curve.points")),
                    _number(
                        speed.get("reference_battery_v", 7.4), "speed_curve.reference_battery_v"
                    ),
                ),
                battery=BatteryMeasurements(
                    tuple(_build(BatteryPoint, p) for p in _list(battery, "battery.points"))
                ),
                camera=_build(CameraSettings, _section(data, "camera")),
            )
        except CalibrationValueError as exc:
            raise CalibrationValueError(f"{source}: {exc}") from exc


_CHANNEL_KEYS = ("min_us", "mid_us", "max_us", "polarity")


def _section(data: dict[str, Any], key: str) -> dict[str, Any]:
    value = data.get(key, {})
    if not isinstance(value, dict):
        raise CalibrationValueError(f"{key!r} must be an object, got {type(value).__name__}")
    return value


def _fields(section: dict[str, Any], what: str, known: tuple[str, ...]) -> dict[str, Any]:
    unknown = sorted(set(section) - set(known))
    if unknown:
        raise CalibrationValueError(
            f"{what}: unknown field(s) {', '.join(unknown)}; expected {', '.join(known)}"
        )
    return section


def _number(value: Any, what: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise CalibrationValueError(f"{what}: {value!r} is not a number")
    return float(value)


def _list(section: dict[str, Any], what: str) -> list[Any]:
    value = section.get("points", [])
    if not isinstance(value, list):
        raise CalibrationValueError(f"{what!r} must be a list, got {type(value).__name__}")
    return value


def _build(cls: type, data: Any) -> Any:
    if not isinstance(data, dict):
        raise CalibrationValueError(f"{cls.__name__}: expected an object, got {data!r}")
    known = {f.name for f in fields(cls)}
    unknown = sorted(set(data) - known)
    if unknown:
        raise CalibrationValueError(
            f"{cls.__name__}: unknown field(s) {', '.join(unknown)}; expected {', '.join(sorted(known))}"
        )
    try:
        return cls(**data)
    except TypeError as exc:
        raise CalibrationValueError(f"{cls.__name__}: {exc}") from exc


@dataclass(frozen=True)
class Change:
    """One field that differs between two calibrations."""

    path: str
    """Dotted field name, e.g. `steering.mid_us` or `speed_curve.points`."""
    old: Any
    """Value in the saved calibration."""
    new: Any
    """Value in the edited calibration."""


def diff(old: Calibration, new: Calibration) -> list[Change]:
    """Fields that differ, in file order; point lists compare as a whole."""
    out: list[Change] = []

    def walk(prefix: str, a: Any, b: Any) -> None:
        if prefix == "speed_curve.fit":
            return  # derived from the points, which are compared themselves
        if isinstance(a, dict) and isinstance(b, dict):
            for key in list(a) + [k for k in b if k not in a]:
                walk(f"{prefix}.{key}" if prefix else key, a.get(key), b.get(key))
        elif a != b:
            out.append(Change(prefix, a, b))

    walk("", old.to_dict(), new.to_dict())
    return out
