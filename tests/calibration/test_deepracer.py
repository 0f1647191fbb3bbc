"""DeepRacer calibration.json import and export: the car servo node's layout
(`{"Calibration": {"Motor", "Servo", "version": 1}}`, nanoseconds, polarity), older layouts
still read."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest

from calibration.deepracer import (
    FACTORY_MOTOR_NS,
    FACTORY_SERVO_NS,
    deepracer_text,
    export_deepracer,
    from_deepracer_dict,
    import_deepracer,
    to_deepracer_dict,
)
from calibration.errors import DeepRacerFormatError
from calibration.model import Calibration, SteeringCalibration
from vehicle.pulses import ChannelCalibration

DATA = Path(__file__).parent / "data"


def _file(servo: dict, motor: dict) -> dict:
    """A calibration.json in the car's layout (servo_mgr.cpp `writeCalJSON`)."""
    return {"Calibration": {"Motor": motor, "Servo": servo, "version": 1}}


def test_factory_file_imports_to_factory_defaults() -> None:
    cal = from_deepracer_dict(_file(FACTORY_SERVO_NS, FACTORY_MOTOR_NS))
    assert cal == Calibration()
    assert import_deepracer(DATA / "car_factory_calibration.json") == Calibration()


def test_export_is_the_servo_nodes_layout_and_reimports(tmp_path: Path) -> None:
    cal = replace(
        Calibration(),
        steering=SteeringCalibration(ChannelCalibration(1180, 1455, 1730, -1), 26.0, 28.0),
    )
    path = tmp_path / "calibration.json"
    export_deepracer(cal, path)
    data = json.loads(path.read_text())
    assert list(data) == ["Calibration"]  # no top-level version: the car would reset
    assert list(data["Calibration"]) == ["Motor", "Servo", "version"]
    assert data["Calibration"]["version"] == 1 and type(data["Calibration"]["version"]) is int
    assert data["Calibration"]["Servo"] == {
        "max": 1_730_000,
        "mid": 1_455_000,
        "min": 1_180_000,
        "polarity": -1,
    }
    assert data["Calibration"]["Motor"]["max"] == 1_604_000
    assert all(type(v) is int for c in ("Motor", "Servo") for v in data["Calibration"][c].values())
    # angles are not in DeepRacer's file: they come from the base calibration
    back = import_deepracer(path, base=cal)
    assert back == cal
    assert import_deepracer(path).steering.left_deg is None
    assert to_deepracer_dict(back) == data


@pytest.mark.parametrize("name", ["car_factory_calibration.json", "car_calibrated.json"])
def test_round_trip_of_a_file_the_car_wrote_is_byte_identical(name: str, tmp_path: Path) -> None:
    """Import then export gives back the car's own file, formatting included (the factory
    motor max 1 603 500 ns is the one value that moves, to whole microseconds)."""
    original = (DATA / name).read_text()
    out = tmp_path / "calibration.json"
    export_deepracer(import_deepracer(DATA / name), out)
    assert out.read_text() == original.replace("1603500", "1604000")
    assert deepracer_text(json.loads(original)) == original


@pytest.mark.parametrize("name", ["car_old_no_version.json", "openracer_0_1_export.json"])
def test_older_layouts_still_import_and_export_in_the_cars_layout(
    name: str, tmp_path: Path
) -> None:
    cal = import_deepracer(DATA / name)
    assert (cal.steering.min_us, cal.steering.mid_us, cal.steering.max_us) == (1180, 1470, 1760)
    assert (cal.throttle.min_us, cal.throttle.max_us, cal.throttle.polarity) == (1290, 1640, -1)
    out = tmp_path / "calibration.json"
    export_deepracer(cal, out)
    assert out.read_text() == (DATA / "car_calibrated.json").read_text()


@pytest.mark.parametrize(
    "data, match",
    [
        ({}, "no 'Calibration' object"),
        ({"Calibration": {"Servo": FACTORY_SERVO_NS}}, "Calibration.Motor' is missing"),
        (
            _file({**FACTORY_SERVO_NS, "mid": 1_100_000}, FACTORY_MOTOR_NS),
            "need min < mid < max",
        ),
        (_file({**FACTORY_SERVO_NS, "min": "1200000"}, FACTORY_MOTOR_NS), "not a whole number"),
        (_file({**FACTORY_SERVO_NS, "min": float("nan")}, FACTORY_MOTOR_NS), "min = nan is not"),
        (_file({**FACTORY_SERVO_NS, "max": float("-inf")}, FACTORY_MOTOR_NS), "max = -inf is not"),
        (_file({**FACTORY_SERVO_NS, "mid": 1e400}, FACTORY_MOTOR_NS), "mid = inf is not"),
        (
            _file({k: v for k, v in FACTORY_SERVO_NS.items() if k != "polarity"}, FACTORY_MOTOR_NS),
            "Calibration.Servo has no 'polarity'",
        ),
        (_file({**FACTORY_SERVO_NS, "polarity": 0.5}, FACTORY_MOTOR_NS), "is not 1 or -1"),
        (_file({**FACTORY_SERVO_NS, "polarity": 2}, FACTORY_MOTOR_NS), "polarity 2 must be"),
        (
            _file(
                {"min": 100_000, "mid": 200_000, "max": 300_000, "polarity": 1}, FACTORY_MOTOR_NS
            ),
            "outside 500-2500",
        ),
    ],
)
def test_bad_deepracer_files_are_refused(data: dict, match: str) -> None:
    with pytest.raises(DeepRacerFormatError, match=match):
        from_deepracer_dict(data, source="dr.json")


def test_unreadable_and_non_json(tmp_path: Path) -> None:
    with pytest.raises(DeepRacerFormatError, match="cannot read"):
        import_deepracer(tmp_path / "missing.json")
    bad = tmp_path / "bad.json"
    bad.write_text("{")
    with pytest.raises(DeepRacerFormatError, match="not valid JSON"):
        import_deepracer(bad)

    literal = tmp_path / "nan.json"
    literal.write_text(
        '{"Calibration": {"Servo": {"min": NaN, "mid": 1, "max": 2, "polarity": 1}}}'
    )
    with pytest.raises(DeepRacerFormatError, match="min = nan is not"):
        import_deepracer(literal)
