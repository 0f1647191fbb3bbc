"""The calibration data model: validation, pulse mapping, speed fit, diff."""

from __future__ import annotations

from dataclasses import replace

import pytest
from hypothesis import given
from hypothesis import strategies as st

from calibration.errors import CalibrationValueError
from calibration.model import (
    BatteryMeasurements,
    BatteryPoint,
    Calibration,
    CameraSettings,
    SpeedMeasurements,
    SpeedPoint,
    SteeringCalibration,
    ThrottleCalibration,
    diff,
    make_channel,
)
from vehicle.pulses import SpeedCurve


def test_defaults_are_deepracer_factory_values() -> None:
    cal = Calibration()
    assert (cal.steering.min_us, cal.steering.mid_us, cal.steering.max_us) == (1200, 1450, 1700)
    assert cal.steering.polarity == 1
    assert (cal.throttle.min_us, cal.throttle.neutral_us, cal.throttle.max_us) == (1311, 1446, 1604)
    assert cal.throttle.polarity == -1
    # DeepRacer: with motor polarity -1 a forward command gives a duty below mid
    assert cal.throttle.forward_max_us == 1311 and cal.throttle.reverse_max_us == 1604
    assert cal.throttle.pulse_us(0.5) < cal.throttle.neutral_us


@pytest.mark.parametrize(
    "values, match",
    [
        ((499, 1450, 1700, 1), "steering min: 499 us is outside 500-2500"),
        ((1200, 1450, 2501, 1), "steering max: 2501 us is outside 500-2500"),
        ((1200, 1200, 1700, 1), "min < mid < max"),
        ((1200, 1800, 1700, 1), "min < mid < max"),
        ((1200, 1450, 1700, 0), "polarity 0"),
        ((1200.5, 1450, 1700, 1), "whole number"),
    ],
)
def test_channels_refuse_bad_values(values: tuple, match: str) -> None:
    with pytest.raises(CalibrationValueError, match=match):
        make_channel("steering", *values)


@pytest.mark.parametrize("kwargs", [{"left_deg": -5.0}, {"right_deg": 75.0}, {"left_deg": "x"}])
def test_steering_refuses_bad_angles(kwargs: dict) -> None:
    with pytest.raises(CalibrationValueError, match="steering (left|right)_deg"):
        SteeringCalibration(**kwargs)


def test_throttle_refuses_unordered_pulses() -> None:
    with pytest.raises(CalibrationValueError, match="min 1500 us, mid 1500 us"):
        ThrottleCalibration.from_ends(forward_us=1500, neutral_us=1500, reverse_us=1600)


def test_steering_from_ends_derives_polarity() -> None:
    s = SteeringCalibration.from_ends(left_us=1300, centre_us=1510, right_us=1720)
    assert s.polarity == -1 and (s.min_us, s.mid_us, s.max_us) == (1300, 1510, 1720)
    assert s.left_us == 1300 and s.right_us == 1720
    assert s.pulse_us(1.0) == 1300 and s.pulse_us(-1.0) == 1720 and s.pulse_us(0) == 1510
    s2 = SteeringCalibration.from_ends(left_us=1720, centre_us=1510, right_us=1300)
    assert s2.polarity == 1 and s2.pulse_us(1.0) == 1720
    with pytest.raises(CalibrationValueError, match="both 1500"):
        SteeringCalibration.from_ends(left_us=1500, centre_us=1400, right_us=1500)


def test_pulse_mapping_is_asymmetric_like_deepracer() -> None:
    t = ThrottleCalibration(make_channel("throttle", 1300, 1450, 1650, 1))
    assert t.pulse_us(0.5) == 1550  # halfway mid -> max (200 us span)
    assert t.pulse_us(-0.5) == 1375  # halfway mid -> min (150 us span)
    with pytest.raises(CalibrationValueError, match="outside"):
        t.pulse_us(1.5)


def test_speed_curve_must_be_monotonic() -> None:
    a = SpeedPoint(command=0.3, duration_s=2.0, distance_m=2.0)
    b = SpeedPoint(command=0.5, duration_s=2.0, distance_m=1.8)
    with pytest.raises(CalibrationValueError, match="not monotonic"):
        SpeedMeasurements((a, b))
    with pytest.raises(CalibrationValueError, match="two runs at command 0.3"):
        SpeedMeasurements((a, a))
    # with_point replaces a run at the same command
    c = SpeedMeasurements((a,)).with_point(SpeedPoint(0.3, 2.0, 1.0))
    assert len(c.points) == 1 and c.points[0].distance_m == 1.0


def test_speed_fit_is_the_vehicle_curve_through_the_measured_speeds() -> None:
    pts = (SpeedPoint(0.2, 2.0, 1.0), SpeedPoint(0.5, 2.0, 3.0), SpeedPoint(1.0, 2.0, 6.0))
    fit = SpeedMeasurements(pts, reference_battery_v=7.8).fit()
    assert isinstance(fit, SpeedCurve)
    assert fit.points == ((0.2, 0.5), (0.5, 1.5), (1.0, 3.0))
    assert fit.reference_battery_v == 7.8
    assert fit.speed_mps(0.75) == pytest.approx(2.25)
    assert fit.throttle_for(1.5) == pytest.approx(0.5)
    assert fit.top_speed_mps == pytest.approx(3.0)
    assert SpeedMeasurements().fit() is None


@given(
    st.lists(
        st.tuples(st.floats(0.05, 1.0), st.floats(0.1, 5.0)),
        min_size=1,
        max_size=8,
        unique_by=lambda t: round(t[0], 3),
    )
)
def test_valid_speed_points_fit_monotonic_and_invertible(raw: list[tuple[float, float]]) -> None:
    commands = sorted(round(c, 3) for c, _ in raw)
    speeds = sorted(s for _, s in raw)
    if len(set(speeds)) != len(speeds) or len(set(commands)) != len(commands):
        return
    pts = tuple(SpeedPoint(c, 1.0, v) for c, v in zip(commands, speeds, strict=True))
    fit = SpeedMeasurements(pts).fit()
    assert fit is not None
    for c in (0.1, 0.3, 0.6, 0.9):
        assert fit.speed_mps(c) <= fit.speed_mps(c + 0.05) + 1e-12
    for p in pts:
        assert fit.throttle_for(p.speed_mps) == pytest.approx(p.command)


def test_absolute_mapping_needs_curve_and_angles() -> None:
    cal = Calibration()
    assert cal.absolute_mapping() is None
    cal = replace(
        cal,
        steering=replace(cal.steering, left_deg=28.0, right_deg=26.5),
        speed=SpeedMeasurements((SpeedPoint(0.5, 2.0, 3.0),)),
        battery=BatteryMeasurements((BatteryPoint(7.4, 3.0), BatteryPoint(8.2, 3.4))),
    )
    mapping = cal.absolute_mapping()
    assert mapping is not None and mapping.max_steer_deg == 26.5
    assert mapping.battery is not None and mapping.battery.top_speed_mps(7.8) == pytest.approx(3.2)
    assert cal.pulses().throttle == cal.throttle.channel


def test_battery_compensation_interpolates() -> None:
    comp = BatteryMeasurements((BatteryPoint(8.4, 3.0), BatteryPoint(7.2, 2.4)))
    assert [p.battery_v for p in comp.points] == [7.2, 8.4]
    fit = comp.fit()
    assert fit is not None and fit.top_speed_mps(7.8) == pytest.approx(2.7)
    assert BatteryMeasurements().fit() is None
    with pytest.raises(CalibrationValueError, match="0.05 V apart"):
        BatteryMeasurements((BatteryPoint(7.40, 2.0), BatteryPoint(7.42, 2.1)))
    assert len(comp.with_point(BatteryPoint(7.21, 2.5)).points) == 2
    with pytest.raises(CalibrationValueError, match="outside 3-20 V"):
        BatteryPoint(0.5, 2.0)


def test_camera_settings_validation() -> None:
    CameraSettings(rotation_deg=180, flip_horizontal=True, exposure_us=8000, analogue_gain=2.0)
    with pytest.raises(CalibrationValueError, match="0, 90, 180, 270"):
        CameraSettings(rotation_deg=45)
    with pytest.raises(CalibrationValueError, match="exposure"):
        CameraSettings(exposure_us=10)


def test_dict_round_trip_and_errors_name_the_source() -> None:
    cal = Calibration(
        steering=SteeringCalibration(make_channel("s", 1150, 1480, 1790, -1), 27.5, 29.0),
        speed=SpeedMeasurements((SpeedPoint(0.4, 2.0, 2.2), SpeedPoint(0.8, 2.0, 5.0))),
        battery=BatteryMeasurements((BatteryPoint(7.6, 3.1),)),
        camera=CameraSettings(rotation_deg=180),
    )
    data = cal.to_dict()
    assert SpeedCurve.from_dict(data["speed_curve"]["fit"]) == cal.speed.fit()
    assert Calibration.from_dict(data) == cal
    data["steering"]["mid_us"] = 2000
    with pytest.raises(CalibrationValueError, match=r"^car\.json: steering: pulse widths"):
        Calibration.from_dict(data, source="car.json")
    with pytest.raises(CalibrationValueError, match="unknown field"):
        Calibration.from_dict({"throttle": {"neutral": 1500}})
    with pytest.raises(CalibrationValueError, match="unknown section"):
        Calibration.from_dict({"motor": {}})


def test_diff_lists_changed_fields() -> None:
    old = Calibration()
    new = replace(
        old,
        steering=replace(
            old.steering, channel=make_channel("s", 1200, 1462, 1700, 1), left_deg=28.0
        ),
        speed=SpeedMeasurements((SpeedPoint(0.5, 2.0, 3.0),)),
    )
    changes = {c.path: (c.old, c.new) for c in diff(old, new)}
    assert changes["steering.mid_us"] == (1450, 1462)
    assert changes["steering.left_deg"] == (None, 28.0)
    assert "speed_curve.points" in changes and "speed_curve.fit" not in changes
    assert diff(old, old) == []
