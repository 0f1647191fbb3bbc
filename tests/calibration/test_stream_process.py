"""The calibrator's command stream in its own process (`calibration.stream_process`)
against the real firmware on the simulated board: it drives the motor while a key is
held, and a calibrator that goes away (its end of the control pipe closes, as when it is
killed) leaves the car at neutral and disarmed."""

from __future__ import annotations

import functools
import threading
import time
from collections.abc import Callable, Iterator

import pytest

from calibration.actuator import ActuatorStatus
from calibration.stream_process import StreamProcess, open_link
from sim2real.hil.board import SimulatedFirmware
from vehicle.firmware import protocol as P
from vehicle.link import LinkConfig
from vehicle.pulses import PulseCalibration

pytestmark = pytest.mark.slow

WAIT_S = 60.0
"""A test timeout (the machine may be loaded), not a timing goal."""


def until(condition: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + WAIT_S
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {WAIT_S} s: {what}")
        time.sleep(0.02)


@pytest.fixture
def sim() -> Iterator[SimulatedFirmware]:
    s = SimulatedFirmware.start(realtime_physics=True)
    yield s
    s.stop()


def _throttle_us(sim: SimulatedFirmware) -> int:
    return [us for _, which, us in sim.board.pulse_log if which == "throttle"][-1]


def test_a_calibrator_that_goes_away_leaves_the_car_neutral(sim: SimulatedFirmware) -> None:
    stream = StreamProcess(
        functools.partial(open_link, LinkConfig(port=sim.port, timeout_s=1.5)),
        PulseCalibration(),
    )
    statuses: list[ActuatorStatus] = []
    stop = threading.Event()
    worker = threading.Thread(target=stream.loop, args=(statuses.append, stop), daemon=True)
    worker.start()
    until(lambda: sim.controller is not None and sim.controller.state == P.STATE_ARMED, "armed")
    mid = sim.controller.t_mid
    deadline = time.monotonic() + WAIT_S
    while _throttle_us(sim) == mid:  # a key held: auto-repeat keeps the deadman open
        assert time.monotonic() < deadline, "the throttle never left neutral"
        stream.hold(mid + 150)
        time.sleep(0.05)
    assert any(s.moving for s in statuses)  # what the stream reported crossed back
    stream._control.close()  # the calibrator's end of the pipe: as if it were killed
    until(lambda: sim.controller.state == P.STATE_DISARMED, "disarmed by the stream process")
    assert _throttle_us(sim) == mid
    until(lambda: not stream.process.is_alive(), "the stream process ended")
    stop.set()
    worker.join(timeout=WAIT_S)
