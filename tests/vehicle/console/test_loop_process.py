"""The console's process boundary (`vehicle.console.loop_process`) against the real
firmware on the simulated board: the drive loop runs in its own process, so a console
that is frozen does not hold it up, and a console that dies sends the car to neutral.
The console is a stand-in process (`loop_console.py`) the test freezes or kills; what
the firmware saw is read from the simulated board in this process. Nothing here
measures time: `racer bench car --console` does."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from sim2real.hil.board import SimulatedFirmware
from vehicle.firmware import protocol as P

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[3]
WAIT_S = 60.0
"""Generous: the machine may be loaded; these are test timeouts, not timing goals."""


class Console:
    """The stand-in console process and what it reported."""

    def __init__(self, port: str) -> None:
        env = {**os.environ, "PYTHONPATH": str(ROOT)}
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "tests.vehicle.console.loop_console", port],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            cwd=ROOT,
            env=env,
        )
        self.messages: list[dict[str, Any]] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.messages.append(json.loads(line))

    def send(self, command: str) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(command + "\n")
        self.proc.stdin.flush()

    def first(self, kind: str) -> dict[str, Any]:
        until(lambda: any(m["kind"] == kind for m in self.messages), f"a {kind!r} message")
        return next(m for m in self.messages if m["kind"] == kind)

    def rows(self) -> list[list[Any]]:
        return [r for m in self.messages if m["kind"] == "rows" for r in m["rows"]]

    def report(self) -> str:
        """What the loop process told the console, for a failure message."""
        said = [m for m in self.messages if m["kind"] != "rows"]
        return f"console messages: {said[-20:]}; {len(self.rows())} figure rows"

    def raise_if_ended(self) -> None:
        """The loop ended before the test expected it to: say why, at once."""
        if any(m["kind"] == "end" for m in self.messages):
            raise AssertionError(f"the loop process ended early; {self.report()}")

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait(timeout=WAIT_S)


def until(
    condition: Callable[[], bool],
    what: str,
    timeout_s: float = WAIT_S,
    report: Callable[[], str] | None = None,
) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            detail = f"; {report()}" if report else ""
            raise AssertionError(f"not within {timeout_s} s: {what}{detail}")
        time.sleep(0.02)


def _ended(pid: int) -> bool:
    """The process has exited (gone, or a zombie nobody reaped yet)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().split(") ")[1].startswith("Z")
    except (FileNotFoundError, ProcessLookupError):
        return True


@pytest.fixture
def sim() -> Iterator[SimulatedFirmware]:
    s = SimulatedFirmware.start(realtime_physics=True)
    yield s
    s.stop()


@pytest.fixture
def console(sim: SimulatedFirmware) -> Iterator[Console]:
    c = Console(sim.port)
    yield c
    c.close()


def _driving(sim: SimulatedFirmware, console: Console) -> int:
    """Wait until the loop process drives the car; its pid."""
    loop_pid = int(console.first("started")["loop_pid"])

    def armed() -> bool:
        console.raise_if_ended()
        return sim.controller is not None and sim.controller.state == P.STATE_ARMED

    until(armed, "the firmware armed by the loop process", report=console.report)
    until(lambda: sim.physics.speed_mps > 0.2, "the car moving", report=console.report)
    return loop_pid


def test_killing_the_console_sends_neutral_and_ends_the_loop(
    sim: SimulatedFirmware, console: Console
) -> None:
    loop_pid = _driving(sim, console)
    console.proc.send_signal(signal.SIGKILL)
    console.proc.wait(timeout=WAIT_S)
    # the loop process read the end of its control pipe: neutral, then an explicit
    # DISARM (the firmware's own failsafe would leave it in FAILSAFE, not DISARMED)
    until(lambda: sim.controller.state == P.STATE_DISARMED, "the firmware disarmed")
    throttle = [us for _, which, us in sim.board.pulse_log if which == "throttle"]
    assert throttle[-1] == sim.controller.t_mid
    until(lambda: _ended(loop_pid), "the loop process ended")


def test_a_console_killed_with_a_full_queue_still_ends_the_loop(
    sim: SimulatedFirmware, console: Console
) -> None:
    """The console stops reading (frozen) long enough for the queue's pipe to fill with
    rows and camera frames, then dies: the loop process must not wait for ever to hand
    them over (multiprocessing's queue joins its feeder thread at exit)."""
    loop_pid = _driving(sim, console)
    console.proc.send_signal(signal.SIGSTOP)
    good = sim.controller.parser.good
    # 90 frames at 15 Hz: six camera pictures (one every 0.5 s, up to 77 kB each) and 90
    # rows, far past a pipe's 64 kB
    until(lambda: sim.controller.parser.good > good + 90, "90 frames at the firmware")
    console.proc.send_signal(signal.SIGKILL)
    console.proc.wait(timeout=WAIT_S)
    until(lambda: sim.controller.state == P.STATE_DISARMED, "the firmware disarmed")
    until(lambda: _ended(loop_pid), "the loop process ended")


def test_the_loop_keeps_driving_while_the_console_is_frozen(
    sim: SimulatedFirmware, console: Console
) -> None:
    _driving(sim, console)
    t_freeze = time.time()
    console.proc.send_signal(signal.SIGSTOP)  # the console does nothing at all now
    try:
        good = sim.controller.parser.good
        until(lambda: sim.controller.parser.good > good + 100, "100 frames at the firmware")
        assert sim.controller.state == P.STATE_ARMED
    finally:
        t_thaw = time.time()
        console.proc.send_signal(signal.SIGCONT)
    console.send("estop")
    end = console.first("end")
    assert end["reason"] == "emergency stop" and end["ok"]
    until(lambda: sim.controller.state == P.STATE_DISARMED, "the firmware disarmed")
    rows = console.rows()
    # every iteration reached the console, in order, none lost while it was frozen
    assert [r[0] for r in rows] == list(range(1, len(rows) + 1))
    frozen = [r for r in rows if t_freeze < r[1] < t_thaw]
    assert len(frozen) >= 5, f"the loop ran {len(frozen)} iterations while frozen"
    # and each of them sent the model's command: no fault, a latency measured
    assert all(ms is not None and event is None for _f, _t, ms, event in frozen)
    console.send("close")
    console.first("closed")
