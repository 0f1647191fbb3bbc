"""The calibrator against the real firmware on the simulated board, through the real
`vehicle.link.Link` over a pty: the keys move the simulated servo and motor, the motor
stops when the keys stop, and a crash or a pulled cable leaves the car at neutral."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from calibration.screens.base import ConfirmScreen
from calibration.screens.steering import SteeringScreen
from calibration.screens.throttle import ThrottleScreen
from sim2real.hil.board import SimulatedFirmware
from tests.calibration.conftest import make_app
from tests.pilot import goto, hold_key, run_async, until
from vehicle.link import Link, LinkConfig

pytestmark = pytest.mark.slow


@pytest.fixture
def car() -> Iterator[tuple[SimulatedFirmware, Link]]:
    sim = SimulatedFirmware.start(realtime_physics=True)
    # generous timeout: the simulated firmware shares a loaded CPU with the app under test
    link = Link(LinkConfig(port=sim.port, timeout_s=1.5)).open()
    yield sim, link
    link.close()
    sim.stop()


@run_async
async def test_keys_move_the_simulated_car(tmp_path: Path, car) -> None:  # type: ignore[no-untyped-def]
    sim, link = car
    app = make_app(tmp_path / "cal.json", link)
    async with app.run_test(size=(80, 24)) as pilot:
        await until(pilot, lambda: app.status is not None and app.status.link_state == "ok")
        # armed with the calibration limits; on a busy machine the first commands can pause
        # past the firmware's 100 ms failsafe, and the calibrator then arms it again
        await until(pilot, lambda: sim.controller.state == 1)
        await until(pilot, lambda: isinstance(app.screen, SteeringScreen))
        await pilot.press(*["right_square_bracket"] * 9)  # 1540 us: 10 deg left
        await until(pilot, lambda: sim.physics.steer_deg > 9.0, timeout_s=10.0)
        assert sim.physics.steer_deg == pytest.approx((1540 - 1455) / 8.5, abs=0.2)
        await goto(pilot, "2", ThrottleScreen)
        await until(pilot, lambda: abs(sim.physics.steer_deg) < 1.0)  # centred on leaving
        await pilot.press(*["left_square_bracket"] * 6, "w")  # 1386 us: forward
        await until(pilot, lambda: isinstance(app.screen, ConfirmScreen))
        await pilot.press("y")
        await until(pilot, lambda: isinstance(app.screen, ThrottleScreen))
        # held until the car is moving (1 s on an idle machine), at most 15 s
        await hold_key(pilot, "w", 15.0, until=lambda: sim.physics.speed_mps > 0.3)
        # released: the firmware outputs neutral again and the car slows to a stop
        await until(pilot, lambda: link.telemetry().throttle_us == 1446)
        await until(pilot, lambda: sim.physics.speed_mps < 0.05)
    assert sim.controller.state == 0  # quitting disarmed the firmware


@run_async
async def test_a_crash_leaves_the_car_at_neutral(tmp_path: Path, car) -> None:  # type: ignore[no-untyped-def]
    sim, link = car
    app = make_app(tmp_path / "cal.json", link)

    def boom(_delta: int) -> None:
        raise RuntimeError("a bug in a screen")

    with pytest.raises(RuntimeError, match="a bug in a screen"):
        async with app.run_test(size=(80, 24)) as pilot:
            await goto(pilot, "2", ThrottleScreen)
            await pilot.press("[", "w")
            await until(pilot, lambda: isinstance(app.screen, ConfirmScreen))
            await pilot.press("y")
            await until(pilot, lambda: isinstance(app.screen, ThrottleScreen))
            await hold_key(pilot, "w", 0.3)
            assert link.telemetry().throttle_us == 1436
            app.screen.action_nudge = boom  # type: ignore[method-assign]
            await pilot.press("left")
            await pilot.pause(0.5)
    tel = link.telemetry()
    assert tel.state == "disarmed" and tel.throttle_us == 1446


@run_async
async def test_pulled_cable_is_reported(tmp_path: Path, car) -> None:  # type: ignore[no-untyped-def]
    sim, link = car
    app = make_app(tmp_path / "cal.json", link)
    async with app.run_test(size=(80, 24)) as pilot:
        await until(pilot, lambda: app.status is not None and app.status.link_state == "ok")
        sim.cut_cable()
        await until(pilot, lambda: app.status.link_state == "lost", timeout_s=5.0)
        # Either way of noticing is right: the firmware falls silent (read side), or the
        # pty refuses the next command (write side, EIO), whichever happens first.
        error = app.status.error or ""
        assert any(word in error for word in ("lost", "silent", "disconnected")), error
