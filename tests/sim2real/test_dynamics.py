"""Golden values for the bicycle model and the battery-speed curve."""

from __future__ import annotations

import math

import pytest

from sim2real.battery import Battery, BatteryConfig, cell_open_circuit_v
from sim2real.dynamics import CarDynamics, DynamicsConfig, wrap_angle
from sim2real.errors import SimConfigError


def _drive(dyn: CarDynamics, steer: float, speed: float, steps: int, rate_hz: float = 15.0):
    for _ in range(steps):
        dyn.step(steer, speed, 1.0 / rate_hz)
    return dyn.state


def test_straight_line_distance_matches_speed_without_lags():
    dyn = CarDynamics(DynamicsConfig(speed_time_constant_s=0, steer_time_constant_s=0))
    dyn.reset(1.0, 2.0, math.pi / 2)
    s = _drive(dyn, 0.0, 2.0, 15)
    assert s.x_m == pytest.approx(1.0, abs=1e-9)
    assert s.y_m == pytest.approx(4.0, abs=1e-9)
    assert s.time_s == pytest.approx(1.0)


def test_steady_turn_radius_is_wheelbase_over_tan_steer_at_the_rear_axle():
    cfg = DynamicsConfig(speed_time_constant_s=0, steer_time_constant_s=0)
    dyn = CarDynamics(cfg)
    dyn.reset(0.0, 0.0, 0.0)
    _drive(dyn, 20.0, 0.5, 150)
    s = dyn.state
    # yaw rate = v tan(delta) / L below the grip limit
    assert s.yaw_rate_rps == pytest.approx(0.5 * math.tan(math.radians(20)) / 0.164, rel=1e-6)
    # rear axle stays on a circle of radius L / tan(delta) around a fixed centre
    r = cfg.wheelbase_m / math.tan(math.radians(20))
    rx = s.x_m - cfg.rear_axle_behind_origin_m * math.cos(s.heading_rad)
    ry = s.y_m - cfg.rear_axle_behind_origin_m * math.sin(s.heading_rad)
    # started at rear axle (-a, 0) heading +x turning left: centre at (-a, r)
    assert math.hypot(rx + cfg.rear_axle_behind_origin_m, ry - r) == pytest.approx(r, abs=1e-9)


def test_clipping_to_deepracer_limits():
    dyn = CarDynamics(DynamicsConfig(speed_time_constant_s=0, steer_time_constant_s=0))
    dyn.reset(0, 0, 0)
    dyn.step(45.0, 9.0, 1 / 15)
    assert dyn.applied_steer_deg == 30.0 and dyn.applied_speed_mps == 4.0
    dyn.step(-45.0, 0.01, 1 / 15)
    assert dyn.applied_steer_deg == -30.0 and dyn.applied_speed_mps == pytest.approx(0.1)


def test_understeer_caps_lateral_acceleration():
    cfg = DynamicsConfig(max_lateral_accel_mps2=5.0)
    dyn = CarDynamics(cfg)
    dyn.reset(0, 0, 0)
    s = _drive(dyn, 30.0, 4.0, 45)
    assert s.speed_mps * s.yaw_rate_rps == pytest.approx(5.0, rel=1e-3)


def test_latency_delays_commands_by_whole_frames():
    dyn = CarDynamics(DynamicsConfig(latency_frames=2))
    dyn.reset(0, 0, 0)
    dyn.step(10.0, 1.0, 1 / 15)
    dyn.step(20.0, 2.0, 1 / 15)
    assert dyn.applied_speed_mps == 0.0 and dyn.state.x_m == 0.0
    dyn.step(0.0, 3.0, 1 / 15)
    assert (dyn.applied_steer_deg, dyn.applied_speed_mps) == (10.0, 1.0)


def test_speed_lag_is_first_order():
    dyn = CarDynamics(DynamicsConfig(speed_time_constant_s=0.2))
    dyn.reset(0, 0, 0)
    dyn.step(0.0, 1.0, 0.2)
    assert dyn.state.speed_mps == pytest.approx(1 - math.exp(-1), rel=1e-9)


def test_steering_offset_makes_straight_command_curve_left():
    dyn = CarDynamics(DynamicsConfig(steer_offset_deg=2.0))
    dyn.reset(0, 0, 0)
    s = _drive(dyn, 0.0, 1.0, 30)
    assert s.heading_rad > 0.1 and s.y_m > 0


def test_stable_at_top_speed_with_coarse_frames():
    dyn = CarDynamics()
    dyn.reset(0, 0, 0)
    s = _drive(dyn, 15.0, 4.0, 60, rate_hz=5.0)
    assert math.isfinite(s.x_m) and abs(s.speed_mps - 4.0) < 1e-6


def test_wheel_centres_geometry():
    dyn = CarDynamics()
    dyn.reset(0, 0, math.pi / 2)
    lr, lf, rr, rf = dyn.wheel_centres()
    assert lr == pytest.approx((-0.081, -0.0817))
    assert rf == pytest.approx((0.081, 0.0823))


def test_wrap_angle():
    assert wrap_angle(math.pi) == pytest.approx(math.pi)
    assert wrap_angle(-math.pi) == pytest.approx(math.pi)
    assert wrap_angle(3 * math.pi / 2) == pytest.approx(-math.pi / 2)


def test_bad_config_is_refused():
    with pytest.raises(SimConfigError, match="wheelbase_m"):
        DynamicsConfig(wheelbase_m=0)


def test_battery_drains_and_slows_the_car():
    assert cell_open_circuit_v(1.0) == pytest.approx(4.2)
    assert cell_open_circuit_v(0.0) == pytest.approx(3.27)
    bat = Battery(BatteryConfig(drain_multiplier=200.0))
    first = bat.speed_scale()
    for _ in range(15 * 60):
        bat.drain(2.0, 1 / 15)
    assert bat.soc < 0.6
    assert bat.speed_scale() < first
    fresh = Battery(BatteryConfig(initial_soc=1.0))
    tired = Battery(BatteryConfig(initial_soc=0.1))
    assert tired.speed_scale() < 1.0 < fresh.speed_scale()
    for b in (fresh, tired):
        dyn = CarDynamics(DynamicsConfig(speed_time_constant_s=0))
        dyn.reset(0, 0, 0)
        dyn.step(0.0, 1.0, 1.0, speed_scale=b.speed_scale())
        b.distance = dyn.state.x_m
    assert tired.distance < fresh.distance
