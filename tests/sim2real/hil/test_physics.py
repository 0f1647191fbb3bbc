"""sim2real.hil.physics: the simulated servo, ESC, motor and battery, on the simulator's
one LiPo model (sim2real.battery), and the calibration a careful session finds on them."""

from __future__ import annotations

import dataclasses

import pytest

from sim2real.battery import Battery, BatteryConfig
from sim2real.hil.physics import ADC_DIVIDER, CarPhysics, PhysicsConfig, sim_calibration


def test_battery_is_the_simulators_lipo_model():
    car = CarPhysics()
    assert isinstance(car.battery, Battery)
    assert car.config.battery == BatteryConfig(initial_soc=0.95, calibrated_voltage_v=7.9)
    # 2S at 95 % under the idle load, as sim2real.battery computes it
    assert car.battery_v() == Battery(car.config.battery).voltage_v()
    assert car.battery_v() == pytest.approx(2 * 4.13 - 0.2 * 0.06)


def test_speed_follows_throttle_curve_and_pack_voltage():
    fresh = CarPhysics()
    tired = CarPhysics(dataclasses.replace(PhysicsConfig(), battery=BatteryConfig(initial_soc=0.2)))
    full = fresh.config.esc_full_forward_us
    assert fresh.speed_target_mps(fresh.config.esc_neutral_us - 5) == 0.0  # deadband
    v_fresh = fresh.speed_target_mps(full)
    assert v_fresh == pytest.approx(4.0 * fresh.battery_v() / 7.9)
    assert tired.speed_target_mps(full) / v_fresh == pytest.approx(
        tired.battery_v() / fresh.battery_v()
    )


def test_driving_drains_the_battery_as_sim2real_battery_does():
    car = CarPhysics()
    twin = Battery(car.config.battery)
    car.set_pulses(car.config.servo_center_us, car.config.esc_full_forward_us)
    for _ in range(600):  # 10 s at 60 Hz
        car.advance(1 / 60)
        twin.drain(car.speed_mps, 1 / 60)
    assert car.battery.soc == twin.soc < 0.95
    assert car.battery.current_a == twin.current_a > 0.2
    assert 35.0 < car.odometer_m < 40.0


def test_adc_reads_the_pack_through_the_divider():
    car = CarPhysics(dataclasses.replace(PhysicsConfig(), adc_noise_v=0.0))
    assert car.adc_pin_v() * ADC_DIVIDER == pytest.approx(car.battery_v())


def test_sim_calibration_reproduces_physical_speeds():
    cal, mapping = sim_calibration()
    car = CarPhysics()
    for v in (0.5, 1.0, 2.0):
        steer, thr = mapping.normalized(0.0, v, 1.0, battery_v=car.battery_v())
        pulse = cal.throttle.pulse_us(thr)
        assert car.speed_target_mps(pulse) == pytest.approx(v, rel=0.03)
    for deg in (-25.0, 10.0):
        steer, _ = mapping.normalized(deg, 0.5, 1.0)
        assert car.steer_target_deg(cal.steering.pulse_us(steer)) == pytest.approx(deg, abs=0.2)


class Clock:
    def __init__(self) -> None:
        self.t = 100.0

    def __call__(self) -> float:
        return self.t


def _speed_test(catch_up_every_s: float | None) -> float:
    """A 1 s run at 1700 us, then neutral; the odometer afterwards."""
    clock = Clock()
    car = CarPhysics()
    car.follow_clock(clock)
    car.set_pulses(car.config.servo_center_us, 1700)
    for _ in range(int(1.0 / catch_up_every_s) if catch_up_every_s else 0):
        clock.t += catch_up_every_s
        car.catch_up()
    clock.t = 101.0
    car.set_pulses(car.config.servo_center_us, car.config.esc_neutral_us)
    return car.odometer_m


def test_a_starved_physics_thread_loses_no_distance() -> None:
    """The pulse change itself integrates the time since the last update: a run whose
    physics thread never woke drives as far as one updated every 5 ms (to the battery
    sag, which one long step sees at its start value)."""
    smooth = _speed_test(0.005)
    starved = _speed_test(None)
    assert smooth > 0.5
    assert starved == pytest.approx(smooth, rel=0.05)


def test_without_a_clock_only_explicit_steps_move_the_car() -> None:
    car = CarPhysics()
    car.set_pulses(car.config.servo_center_us, 1700)
    assert car.odometer_m == 0.0
    car.advance(0.5)
    assert car.odometer_m > 0.0
