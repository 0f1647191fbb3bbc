"""vehicle.pulses: DeepRacer's channel mapping and throttle curve, the absolute mode."""

from __future__ import annotations

import pytest

from vehicle.errors import PulseError
from vehicle.pulses import (
    DEEPRACER_STEERING,
    DEEPRACER_THROTTLE,
    AbsoluteMapping,
    BatteryCompensation,
    ChannelCalibration,
    DeepRacerMapping,
    PulseCalibration,
    SpeedCurve,
    action_pulses,
    deepracer_throttle_curve,
)


def test_factory_defaults_are_deepracers_in_microseconds():
    assert DEEPRACER_STEERING.to_deepracer_ns() == {
        "min": 1_200_000,
        "mid": 1_450_000,
        "max": 1_700_000,
        "polarity": 1,
    }
    assert (
        ChannelCalibration.from_deepracer_ns(
            {"min": 1_311_000, "mid": 1_446_000, "max": 1_603_500, "polarity": -1}
        )
        == DEEPRACER_THROTTLE
    )
    assert (DEEPRACER_THROTTLE.min_us, DEEPRACER_THROTTLE.mid_us, DEEPRACER_THROTTLE.max_us) == (
        1311,
        1446,
        1604,
    )


def test_channel_mapping_like_servo_mgr():
    s = DEEPRACER_STEERING
    assert s.pulse_us(0) == 1450 and s.pulse_us(1) == 1700 and s.pulse_us(-1) == 1200
    assert s.pulse_us(0.5) == 1575 and s.pulse_us(5) == 1700
    t = DEEPRACER_THROTTLE  # polarity -1: forward goes below mid
    assert t.pulse_us(1) == 1311 and t.pulse_us(-1) == 1604 and t.pulse_us(0) == 1446
    assert t.pulse_us(0.5) == round(1446 - 67.5)
    for v in (-1, -0.3, 0, 0.25, 1):
        assert s.value(s.pulse_us(v)) == pytest.approx(v, abs=0.01)
        assert t.value(t.pulse_us(v)) == pytest.approx(v, abs=0.01)


@pytest.mark.parametrize(
    "bad",
    [(1500, 1450, 1700, 1), (1200, 1450, 1700, 0), (100, 1450, 1700, 1), (1200.5, 1450, 1700, 1)],
)
def test_bad_channel_refused(bad):
    with pytest.raises(PulseError):
        ChannelCalibration(*bad)


def test_throttle_parabola_points():
    assert deepracer_throttle_curve(0, 0.8) == 0
    assert deepracer_throttle_curve(0.4, 0.8) == pytest.approx(0.8)
    assert deepracer_throttle_curve(0.8, 0.8) == pytest.approx(1.0)
    assert deepracer_throttle_curve(2.0, 0.8) <= 1.0


def test_deepracer_mapping_relative_and_fraction():
    m = DeepRacerMapping(max_steer_deg=30, max_speed_mps=0.8)
    assert m.normalized(15, 0.4, 1.0) == pytest.approx((0.5, 0.8))
    assert m.normalized(-30, 0.8, 0.5) == pytest.approx((-1.0, 0.5))
    cal = PulseCalibration()
    s_us, t_us, s, t = action_pulses(m, cal, 30, 0.8, max_speed_fraction=1.0)
    assert (s_us, t_us) == (1700, 1311)
    with pytest.raises(PulseError, match="fraction"):
        m.normalized(0, 0.4, 1.5)


def test_speed_curve_monotone_fit_and_inverse():
    curve = SpeedCurve(((0.2, 0.5), (0.4, 1.2), (0.6, 1.1), (1.0, 3.0)), 7.4)
    assert curve.speed_mps(0) == 0
    assert curve.speed_mps(0.4) == pytest.approx(1.15) == curve.speed_mps(0.6)
    assert curve.top_speed_mps == 3.0
    for v in (0.1, 0.5, 1.0, 2.0, 2.9):
        assert curve.speed_mps(curve.throttle_for(v)) == pytest.approx(v)
    assert curve.throttle_for(10) == 1.0
    with pytest.raises(PulseError):
        SpeedCurve(((1.5, 1.0),))


def test_battery_compensation_raises_throttle_on_low_battery():
    curve = SpeedCurve(((0.5, 1.0), (1.0, 2.0)), reference_battery_v=8.0)
    batt = BatteryCompensation(((7.0, 1.6), (8.0, 2.0)))
    m = AbsoluteMapping(curve, max_steer_deg=25.0, battery=batt)
    _, full = m.normalized(0, 1.0, 1.0, battery_v=8.0)
    _, tired = m.normalized(0, 1.0, 1.0, battery_v=7.0)
    assert full == pytest.approx(0.5)
    assert tired == pytest.approx(0.625)  # needs 1.0 / 0.8 = 1.25 m/s on the curve
    steer, _ = m.normalized(25.0, 1.0, 1.0)
    assert steer == 1.0
    m.check(25.0, 2.0)
    with pytest.raises(PulseError, match="full lock"):
        m.check(30.0, 1.0)
    with pytest.raises(PulseError, match="tops out"):
        m.check(20.0, 3.0)


def test_roundtrip_dicts():
    cal = PulseCalibration()
    assert PulseCalibration.from_dict(cal.to_dict()) == cal
    curve = SpeedCurve(((0.5, 1.0), (1.0, 2.0)))
    assert SpeedCurve.from_dict(curve.to_dict()) == curve
