"""The simulated car's physics: what the pulses drive, however the integration is sliced."""

from __future__ import annotations

import pytest

from vehicle.simboard import CarPhysics


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
