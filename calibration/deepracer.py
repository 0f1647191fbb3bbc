"""Import and export of AWS DeepRacer's `calibration.json` (deepracer-compat.md 6.2).

The car's servo node (aws-deepracer-servo-pkg `servo_mgr.cpp`, `writeCalJSON` and
`setCalFromFile`) writes and reads `/opt/aws/deepracer/calibration.json` as
`{"Calibration": {"Motor": {...}, "Servo": {...}, "version": 1}}`: each channel has integer
`min`, `mid`, `max` in NANOSECONDS of PWM duty and `polarity` +-1, and the integer
`version` (`CAL_FILE_VERSION`) sits inside `Calibration`. On newer car software a file
without `Calibration.version` is "old" and is overwritten with factory defaults, so the
export writes exactly that layout, in the node's own formatting (jsoncpp, three-space
indent, sorted keys); the import reads it and the older layouts (no version, or a
top-level one). The node refuses anything but min < mid < max. openracer keeps microseconds, so an
import rounds to the nearest microsecond (the factory motor max 1 603 500 ns becomes
1604 us, half a microsecond off, far below what an ESC resolves) and an export writes
whole microseconds as nanoseconds (`vehicle.pulses.ChannelCalibration` does the unit
conversion both ways). Only the pulse widths travel: steering angles, the
speed curve, battery compensation and camera settings have no DeepRacer equivalent and are
kept from the calibration passed to `import_deepracer`.

Runs on the car: no Textual, no training stack.
"""

from __future__ import annotations

import math
from dataclasses import replace
from pathlib import Path
from typing import Any

from calibration.errors import CalibrationValueError, DeepRacerFormatError
from calibration.model import Calibration, SteeringCalibration, ThrottleCalibration, make_channel
from vehicle.files import read_json

DEEPRACER_VERSION = 1
"""`Calibration.version` as the servo node writes it (`CAL_FILE_VERSION`, an integer)."""
FACTORY_SERVO_NS = {"min": 1_200_000, "mid": 1_450_000, "max": 1_700_000, "polarity": 1}
"""DeepRacer factory steering defaults (servo_mgr.hpp)."""
FACTORY_MOTOR_NS = {"min": 1_311_000, "mid": 1_446_000, "max": 1_603_500, "polarity": -1}
"""DeepRacer factory ESC defaults (servo_mgr.hpp)."""


def _channel(data: dict[str, Any], key: str, source: str) -> dict[str, int]:
    chan = data.get(key)
    if not isinstance(chan, dict):
        raise DeepRacerFormatError(
            f"{source}: 'Calibration.{key}' is missing or not an object; a DeepRacer "
            'calibration.json looks like {"Calibration": {"Servo": {"min": ..., "mid": ..., '
            '"max": ..., "polarity": 1}, "Motor": {...}}}'
        )
    out: dict[str, int] = {}
    for name in ("min", "mid", "max", "polarity"):
        if name not in chan:
            raise DeepRacerFormatError(
                f"{source}: Calibration.{key} has no {name!r}; DeepRacer's car writes min, mid "
                "and max (nanoseconds) and polarity (1 or -1) for each channel"
            )
        value = chan[name]
        whole = (
            not isinstance(value, bool)
            and isinstance(value, int | float)
            and math.isfinite(value)
            and value == int(value)
        )
        if not whole:
            unit = "1 or -1" if name == "polarity" else "a whole number of nanoseconds"
            raise DeepRacerFormatError(
                f"{source}: Calibration.{key}.{name} = {value!r} is not {unit} "
                "(DeepRacer stores integers here)"
            )
        out[name] = int(value)
    if out["polarity"] not in (1, -1):
        raise DeepRacerFormatError(
            f"{source}: Calibration.{key}: polarity {out['polarity']} must be 1 or -1"
        )
    if not out["min"] < out["mid"] < out["max"]:
        raise DeepRacerFormatError(
            f"{source}: Calibration.{key} has min {out['min']} ns, mid {out['mid']} ns, "
            f"max {out['max']} ns; DeepRacer (and openracer) need min < mid < max"
        )
    return out


def _us(chan: dict[str, int]) -> tuple[int, int, int, int]:
    # the rounding of `ChannelCalibration.from_deepracer_ns` (1 603 500 ns -> 1604 us)
    return (
        round(chan["min"] / 1000),
        round(chan["mid"] / 1000),
        round(chan["max"] / 1000),
        chan["polarity"],
    )


def from_deepracer_dict(
    data: Any, *, base: Calibration | None = None, source: str = "calibration.json"
) -> Calibration:
    """The calibration described by a parsed DeepRacer `calibration.json`, with every field
    DeepRacer does not have taken from `base` (defaults when None)."""
    if not isinstance(data, dict) or not isinstance(data.get("Calibration"), dict):
        raise DeepRacerFormatError(
            f"{source}: no 'Calibration' object at the top level; is this DeepRacer's "
            "/opt/aws/deepracer/calibration.json?"
        )
    servo = _channel(data["Calibration"], "Servo", source)
    motor = _channel(data["Calibration"], "Motor", source)
    base = base or Calibration()
    try:
        steering = SteeringCalibration(
            make_channel("steering", *_us(servo)),
            left_deg=base.steering.left_deg,
            right_deg=base.steering.right_deg,
        )
        throttle = ThrottleCalibration(make_channel("throttle", *_us(motor)))
    except CalibrationValueError as exc:
        raise DeepRacerFormatError(f"{source}: {exc}") from exc
    return replace(base, steering=steering, throttle=throttle)


def to_deepracer_dict(cal: Calibration) -> dict[str, Any]:
    """DeepRacer's `calibration.json` for `cal`: the servo node's layout (nanoseconds,
    polarity, the integer version inside `Calibration`)."""
    return {
        "Calibration": {
            "Motor": cal.throttle.channel.to_deepracer_ns(),
            "Servo": cal.steering.channel.to_deepracer_ns(),
            "version": DEEPRACER_VERSION,
        }
    }


def deepracer_text(data: dict[str, Any]) -> str:
    """`data` formatted as the servo node's jsoncpp writer does (`writeJSONToFile`:
    StreamWriterBuilder, indentation three spaces, keys sorted, ` : ` after each key, an
    opening brace on its own line, no newline at the end), so an exported file is the file
    the car itself would write."""

    def value(v: Any, indent: str) -> str:
        if isinstance(v, dict):
            inner = indent + "   "
            members = [f'\n{inner}"{k}" : {value(v[k], inner)}' for k in sorted(v)]
            return ("\n" + indent if indent else "") + "{" + ",".join(members) + f"\n{indent}}}"
        if isinstance(v, bool) or not isinstance(v, int):
            raise TypeError(f"calibration.json holds only objects and integers, not {v!r}")
        return str(v)

    return value(data, "")


def import_deepracer(path: Path, *, base: Calibration | None = None) -> Calibration:
    """Read DeepRacer's `calibration.json` at `path` (see `from_deepracer_dict`)."""
    data = read_json(path, what="DeepRacer calibration", error=DeepRacerFormatError)
    return from_deepracer_dict(data, base=base, source=str(path))


def export_deepracer(cal: Calibration, path: Path) -> None:
    """Write `cal` as DeepRacer's `calibration.json` at `path`, atomically."""
    from calibration.store import write_atomic

    write_atomic(Path(path), deepracer_text(to_deepracer_dict(cal)), backup=False)
