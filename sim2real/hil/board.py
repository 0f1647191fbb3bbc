"""The real motor-controller firmware under CPython on a simulated RP2040 board, reachable
over a pseudo-terminal: what `racer drive --sim` and `racer calibrate --sim` talk to.

The firmware code is the one flashed on the car (`vehicle/firmware/controller.py`,
`actuators.py`, `main.py`); only `machine` is replaced, by pins whose PWM duty and ADC
voltage belong to the physical model of `sim2real.hil.physics` (servo, ESC, motor,
battery). The UART is the pty of `sim2real.hil.line`.

    sim = SimulatedFirmware.start()      # thread running the firmware, a pty for the host
    link = Link(LinkConfig(port=sim.port)).open()
    ...; sim.physics.steer_deg, sim.physics.speed_mps
    sim.cut_cable()                      # close the line (fault tests)
    sim.stop()

`python -m sim2real.hil.board` serves the simulated car from its own process.
Laptop-only: the car runs the firmware on its own chip.
"""

from __future__ import annotations

import sys
import threading
import time
import types
from collections.abc import Callable

from sim2real.hil.line import LineFaults, PtyPort
from sim2real.hil.physics import CarPhysics, PhysicsConfig

_VREF_V = 3.3  # the RP2040 ADC reference

# -- the stand-in `machine` module -----------------------------------------------------


class SimPin:
    """A pin: PWM duty (set by the firmware) and ADC voltage (set by the physics)."""

    OUT = 1
    IN = 0

    def __init__(
        self,
        name: object,
        mode: int = 0,
        *,
        on_duty: Callable[[SimPin], None] | None = None,
        adc_v: Callable[[], float] | None = None,
    ) -> None:
        self.name = name
        self.duty_ns = 0
        self.freq_hz = 0
        self.level = 0
        self._on_duty = on_duty
        self._adc_v = adc_v

    def value(self, v: int | None = None) -> int:
        if v is not None:
            self.level = int(v)
        return self.level


class _PWM:
    def __init__(self, pin: SimPin) -> None:
        self.pin = pin

    def freq(self, hz: int | None = None) -> int:
        if hz is not None:
            self.pin.freq_hz = hz
        return self.pin.freq_hz

    def duty_ns(self, ns: int | None = None) -> int:
        if ns is not None:
            self.pin.duty_ns = int(ns)
            if self.pin._on_duty is not None:
                self.pin._on_duty(self.pin)
        return self.pin.duty_ns


class _ADC:
    def __init__(self, pin: SimPin) -> None:
        self.pin = pin

    def read_u16(self) -> int:
        v = self.pin._adc_v() if self.pin._adc_v is not None else 0.0
        return max(0, min(65535, int(round(v / _VREF_V * 65535))))


def install_machine_module() -> types.ModuleType:
    """Put a stand-in `machine` module (PWM, ADC, Pin) in sys.modules, unless a real or
    stand-in one is there already. Only the simulation process does this."""
    mod = sys.modules.get("machine")
    if mod is not None:
        return mod
    mod = types.ModuleType("machine")
    mod.__doc__ = "openracer's stand-in for MicroPython's machine module (simulation only)"
    mod.PWM = _PWM  # type: ignore[attr-defined]
    mod.ADC = _ADC  # type: ignore[attr-defined]
    mod.Pin = SimPin  # type: ignore[attr-defined]
    sys.modules["machine"] = mod
    return mod


# -- the board ---------------------------------------------------------------------------


class _Watchdog:
    def __init__(self) -> None:
        self.feeds = 0

    def feed(self) -> None:
        self.feeds += 1


class SimBoard:
    """What `vehicle/firmware/main.run` needs from a board, simulated."""

    def __init__(
        self, physics: CarPhysics, port: PtyPort, clock: Callable[[], float] | None = None
    ) -> None:
        """`clock`: seconds for the firmware's ticks_ms (default time.monotonic; a lock-step
        simulation passes its simulated time, so a stalled laptop does not look like a
        silent host to the firmware)."""
        install_machine_module()
        from vehicle.firmware.actuators import BatteryMonitor, PulseOutput

        self.physics = physics
        self.uart = port
        self.pulse_log: list[tuple[float, str, int]] = []
        """(time.monotonic(), 'steer'|'throttle', pulse_us) at every change."""
        self.steer_pin = SimPin("GP14", on_duty=self._on_duty)
        self.throttle_pin = SimPin("GP15", on_duty=self._on_duty)
        self.adc_pin = SimPin("GP26", adc_v=physics.adc_pin_v)
        self.steering = PulseOutput(self.steer_pin, 1450)
        self.throttle = PulseOutput(self.throttle_pin, 1446)
        self.battery = BatteryMonitor(self.adc_pin, 20000, 10000)
        self.led = SimPin("LED", SimPin.OUT)
        self.low_battery_mv = 6400
        self.wdt = _Watchdog()
        self.controller = None
        """The firmware's Controller, once `run` has created it."""
        self.clock = clock or time.monotonic
        self._t0 = self.clock()

    def _on_duty(self, pin: SimPin) -> None:
        us = pin.duty_ns // 1000
        which = "steer" if pin is self.steer_pin else "throttle"
        self.pulse_log.append((time.monotonic(), which, us))
        if len(self.pulse_log) > 200_000:
            del self.pulse_log[:100_000]
        self.physics.set_pulses(self.steer_pin.duty_ns / 1000, self.throttle_pin.duty_ns / 1000)

    def ticks_ms(self) -> int:
        return int((self.clock() - self._t0) * 1000) & 0x3FFFFFFF

    def sleep_ms(self, ms: int) -> None:
        time.sleep(ms / 1000)

    def watchdog_reset(self) -> bool:
        return False

    def watchdog(self) -> _Watchdog:
        return self.wdt


class SimulatedFirmware:
    """The firmware's main loop in a thread on a `SimBoard`, its UART on a pty."""

    def __init__(
        self,
        physics: CarPhysics | None = None,
        faults: LineFaults | None = None,
        *,
        faults_to_host: LineFaults | None = None,
        realtime_physics: bool = False,
        clock: Callable[[], float] | None = None,
    ) -> None:
        self.physics = physics or CarPhysics()
        self.port_device = PtyPort(faults, faults_to_host)
        self.board = SimBoard(self.physics, self.port_device, clock)
        self._stop = threading.Event()
        self._polls = 0
        self._realtime = realtime_physics
        self._threads: list[threading.Thread] = []
        self.error: BaseException | None = None

    @property
    def controller(self):  # type: ignore[no-untyped-def]
        """The running firmware's Controller (state, counters, limits)."""
        return self.board.controller

    @property
    def port(self) -> str:
        """The pty path the host opens (like /dev/ttyACM0 on the car)."""
        return self.port_device.path

    @classmethod
    def start(
        cls,
        physics: CarPhysics | None = None,
        faults: LineFaults | None = None,
        *,
        faults_to_host: LineFaults | None = None,
        realtime_physics: bool = False,
        clock: Callable[[], float] | None = None,
    ) -> SimulatedFirmware:
        """Start the firmware thread (and, with `realtime_physics`, a thread that advances
        the physics with the wall clock, for `racer calibrate --sim`)."""
        sim = cls(
            physics,
            faults,
            faults_to_host=faults_to_host,
            realtime_physics=realtime_physics,
            clock=clock,
        )
        t = threading.Thread(target=sim._run, name="sim-firmware", daemon=True)
        t.start()
        sim._threads.append(t)
        if realtime_physics:
            p = threading.Thread(target=sim._physics_loop, name="sim-physics", daemon=True)
            p.start()
            sim._threads.append(p)
        deadline = time.monotonic() + 5.0
        while sim.board.controller is None and sim.error is None and time.monotonic() < deadline:
            time.sleep(0.001)
        if sim.error is not None:
            raise sim.error
        return sim

    def _stopping(self) -> bool:
        self._polls += 1
        return self._stop.is_set()

    def _run(self) -> None:
        from vehicle.firmware import main as fw_main

        try:
            fw_main.run(self.board, self._stopping)
        except BaseException as exc:  # surfaced by start() / settle()
            self.error = exc

    def _physics_loop(self) -> None:
        self.physics.follow_clock(time.monotonic)
        while not self._stop.is_set():
            time.sleep(0.005)
            self.physics.catch_up()

    def settle(self, sent_bytes: int | None = None, timeout_s: float = 0.5) -> bool:
        """Wait until the firmware has read what the host wrote (`sent_bytes` in total,
        e.g. `Link.stats.bytes_sent`; a pty hands bytes over asynchronously, so the
        count is the reliable test) and finished the loop iteration that read them
        (lock-step simulation). Without `sent_bytes`, waits for the pty's input queue to
        drain. False on timeout."""
        deadline = time.monotonic() + timeout_s
        port = self.port_device
        if sent_bytes is not None:
            while port.rx_bytes < sent_bytes:
                if time.monotonic() > deadline or port.closed or self.error is not None:
                    return False
                time.sleep(0.0001)
        else:
            while port.pending() > 0:
                if time.monotonic() > deadline:
                    return False
                time.sleep(0.0002)
        target = self._polls + 2
        while self._polls < target:
            if time.monotonic() > deadline or self._stop.is_set() or self.error is not None:
                return False
            time.sleep(0.0001)
        return True

    def wait_polls(self, n: int = 1, timeout_s: float = 10.0) -> bool:
        """Wait until the firmware loop has begun `n` more iterations: after the simulated
        clock moves, no iteration that read the old time is still running."""
        deadline = time.monotonic() + timeout_s
        target = self._polls + n
        while self._polls < target:
            if time.monotonic() > deadline or self._stop.is_set() or self.error is not None:
                return False
            time.sleep(0.0001)
        return True

    def cut_cable(self) -> float:
        """Close the serial line (both ends); returns time.monotonic() of the cut."""
        t = time.monotonic()
        self.port_device.close()
        return t

    def stop(self) -> None:
        self._stop.set()
        for t in self._threads:
            t.join(timeout=2.0)
        self.port_device.close()

    def __enter__(self) -> SimulatedFirmware:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def start_simulated_car(physics: PhysicsConfig | None = None) -> SimulatedFirmware:
    """The firmware on a simulated board, physics in real time; `.port` is the pty path
    to open like /dev/ttyACM0 (`racer calibrate --sim`). Call `.stop()` when done."""
    return SimulatedFirmware.start(CarPhysics(physics), realtime_physics=True)


def main(argv: list[str] | None = None) -> int:
    """`python -m sim2real.hil.board`: run the simulated car in this process, print the pty
    path on the first line of stdout, serve until stdin closes or SIGTERM/SIGINT."""
    import argparse
    import signal

    p = argparse.ArgumentParser(prog="python -m sim2real.hil.board", description=main.__doc__)
    p.add_argument("--seed", type=int, default=0, help="seed of the ADC noise")
    args = p.parse_args(argv)
    sim = SimulatedFirmware.start(CarPhysics(seed=args.seed), realtime_physics=True)
    done = threading.Event()
    for s in (signal.SIGTERM, signal.SIGINT):
        signal.signal(s, lambda *_: done.set())
    print(sim.port, flush=True)

    def watch_stdin() -> None:
        try:
            sys.stdin.read()
        finally:
            done.set()

    threading.Thread(target=watch_stdin, daemon=True).start()
    done.wait()
    sim.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
