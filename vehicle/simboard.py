"""The real motor-controller firmware under CPython on a simulated RP2040 board, reachable
over a pseudo-terminal: what `racer drive --sim` and `racer calibrate --sim` talk to.

The firmware code is the one flashed on the car (`vehicle/firmware/controller.py`,
`actuators.py`, `main.py`); only `machine` is replaced, by pins whose PWM duty and ADC
voltage belong to a physical model here:
- servo: the wheel angle follows the pulse width linearly around the servo's own
  mechanical centre (not necessarily the calibrated one), saturating at its end stops;
- ESC + motor: a deadband around the ESC's own neutral, forward below neutral (the
  DeepRacer ESC's polarity), speed = top speed x throttle^exponent x battery factor,
  reaching it with a first-order lag;
- battery: a 2S LiPo with internal resistance: it sags under load and drains, and the
  ADC reads it through the board's 20k/10k divider with a little noise.

    sim = SimulatedFirmware.start()      # thread running the firmware, a pty for the host
    link = Link(LinkConfig(port=sim.port)).open()
    ...; sim.physics.steer_deg, sim.physics.speed_mps
    sim.cut_cable()                      # close the line (fault tests)
    sim.stop()

Runs on a laptop, not the car; imports nothing beyond the standard library and the
firmware.
"""

from __future__ import annotations

import errno
import fcntl
import math
import os
import random
import sys
import termios
import threading
import time
import tty
import types
from collections.abc import Callable
from dataclasses import dataclass, field

_DIVIDER = 3.0  # board.py: 20 kOhm over 10 kOhm
_VREF_V = 3.3


# -- the physical car ------------------------------------------------------------------


@dataclass(frozen=True)
class PhysicsConfig:
    """The simulated servo, ESC, motor and battery (their *true* properties, which the
    calibration has to find)."""

    servo_center_us: float = 1455.0
    """Pulse width at which the wheels point straight ahead."""
    servo_us_per_deg: float = 8.5
    """Pulse width change per degree of wheel angle (positive pulse change = left)."""
    servo_limit_deg: float = 32.0
    """Mechanical end stop of the steering, degrees."""
    esc_neutral_us: float = 1446.0
    """The ESC's neutral pulse."""
    esc_deadband_us: float = 10.0
    """No motion within +-this of neutral."""
    esc_full_forward_us: float = 1311.0
    """Pulse of full forward throttle (below neutral: DeepRacer ESC polarity)."""
    top_speed_mps: float = 4.0
    """Speed at full throttle on a battery at `nominal_v`."""
    throttle_exponent: float = 1.4
    """Speed grows as throttle^this (drag, motor curve)."""
    speed_time_constant_s: float = 0.25
    """First-order lag of speed toward its target."""
    nominal_v: float = 7.9
    """Loaded battery voltage the top speed was measured at."""
    cells: int = 2
    """LiPo cells in series."""
    capacity_mah: float = 1100.0
    """Battery capacity."""
    initial_soc: float = 0.95
    """State of charge at start."""
    internal_resistance_ohm: float = 0.06
    """Pack internal resistance (sag = current x this)."""
    idle_current_a: float = 0.2
    """Current drawn standing still."""
    current_per_mps_a: float = 1.6
    """Extra current per m/s."""
    adc_noise_v: float = 0.002
    """Noise on the ADC pin voltage (1 sigma)."""


_SOC = (0.0, 0.1, 0.2, 0.4, 0.6, 0.8, 0.9, 1.0)
_OCV = (3.27, 3.69, 3.73, 3.79, 3.87, 3.98, 4.06, 4.20)


def _cell_ocv(soc: float) -> float:
    soc = min(max(soc, 0.0), 1.0)
    for i in range(1, len(_SOC)):
        if soc <= _SOC[i]:
            f = (soc - _SOC[i - 1]) / (_SOC[i] - _SOC[i - 1])
            return _OCV[i - 1] + f * (_OCV[i] - _OCV[i - 1])
    return _OCV[-1]


class CarPhysics:
    """Servo, ESC, motor and battery: pulse widths in, wheel angle and speed out."""

    def __init__(self, config: PhysicsConfig | None = None, seed: int = 0) -> None:
        self.config = config or PhysicsConfig()
        self.rng = random.Random(seed)
        c = self.config
        self.steer_us = c.servo_center_us
        self.throttle_us = c.esc_neutral_us
        self.steer_deg = 0.0
        """Wheel angle, degrees, positive = left (the servo reaches its target at once;
        the car dynamics add the servo's lag)."""
        self.speed_mps = 0.0
        """Ground speed, m/s (reverse is negative)."""
        self.odometer_m = 0.0
        """Distance driven."""
        self.soc = c.initial_soc
        self.current_a = c.idle_current_a
        self.lock = threading.Lock()
        self._clock: Callable[[], float] | None = None
        self._clock_t = 0.0

    def steer_target_deg(self, steer_us: float) -> float:
        c = self.config
        deg = (steer_us - c.servo_center_us) / c.servo_us_per_deg
        return max(-c.servo_limit_deg, min(c.servo_limit_deg, deg))

    def throttle_fraction(self, throttle_us: float) -> float:
        """ESC: pulse -> throttle in [-1, 1] (+ forward), with its deadband."""
        c = self.config
        span = c.esc_neutral_us - c.esc_full_forward_us  # > 0: forward is below neutral
        delta = c.esc_neutral_us - throttle_us
        if abs(delta) <= c.esc_deadband_us:
            return 0.0
        mag = (abs(delta) - c.esc_deadband_us) / (span - c.esc_deadband_us)
        return math.copysign(min(1.0, mag), delta)

    def battery_v(self) -> float:
        """Loaded pack voltage."""
        c = self.config
        return max(0.0, c.cells * _cell_ocv(self.soc) - self.current_a * c.internal_resistance_ohm)

    def speed_target_mps(self, throttle_us: float) -> float:
        c = self.config
        t = self.throttle_fraction(throttle_us)
        return math.copysign(
            c.top_speed_mps * abs(t) ** c.throttle_exponent * self.battery_v() / c.nominal_v, t
        )

    def set_pulses(self, steer_us: float, throttle_us: float) -> None:
        """New pulse widths; when following a clock, the time since the last update is
        first integrated under the old ones."""
        with self.lock:
            self._catch_up_locked()
            self.steer_us = steer_us
            self.throttle_us = throttle_us

    def follow_clock(self, clock: Callable[[], float] = time.monotonic) -> None:
        """Integrate in real time (`racer calibrate --sim`): `catch_up()` advances to
        `clock()`, and every pulse change first integrates up to its own moment, so a
        physics thread the machine starves of CPU loses no distance (a speed test's
        odometer reads what the pulses drove, however late the thread wakes)."""
        with self.lock:
            self._clock = clock
            self._clock_t = clock()

    def catch_up(self) -> None:
        """Integrate up to the followed clock's present (no-op without `follow_clock`)."""
        with self.lock:
            self._catch_up_locked()

    def _catch_up_locked(self) -> None:
        if self._clock is not None:
            now = self._clock()
            self._advance_locked(now - self._clock_t)
            self._clock_t = now

    def advance(self, dt_s: float) -> None:
        """Integrate `dt_s` seconds under the present pulses (speed lag, battery drain)."""
        with self.lock:
            self._advance_locked(dt_s)

    def _advance_locked(self, dt_s: float) -> None:
        c = self.config
        self.steer_deg = self.steer_target_deg(self.steer_us)
        target = self.speed_target_mps(self.throttle_us)
        k = 1.0 - math.exp(-dt_s / c.speed_time_constant_s)
        v0 = self.speed_mps
        self.speed_mps = v0 + (target - v0) * k
        # the exact integral of the first-order lag, so one long step drives as far as
        # many short ones
        self.odometer_m += abs(target * dt_s - (target - v0) * c.speed_time_constant_s * k)
        self.current_a = c.idle_current_a + c.current_per_mps_a * abs(self.speed_mps)
        self.soc = max(0.0, self.soc - self.current_a * dt_s / 3.6 / c.capacity_mah)

    def adc_pin_v(self) -> float:
        return self.battery_v() / _DIVIDER + self.rng.gauss(0.0, self.config.adc_noise_v)


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


# -- the serial line ---------------------------------------------------------------------


@dataclass
class LineFaults:
    """Byte-level faults injected on one direction of the line (seeded)."""

    corrupt_prob: float = 0.0
    """Probability that a byte is XORed with a random non-zero value."""
    drop_prob: float = 0.0
    """Probability that a byte is dropped."""
    seed: int = 0
    """Seed of the fault generator."""
    clean: bytearray = field(default_factory=bytearray)
    """Every byte the host sent, before faults."""
    delivered: bytearray = field(default_factory=bytearray)
    """Every byte the firmware received, after faults."""
    record: bool = False
    """Keep `clean` and `delivered` (tests)."""


def _apply_faults(data: bytes, f: LineFaults, rng: random.Random) -> bytes:
    if f.corrupt_prob or f.drop_prob:
        out = bytearray()
        for b in data:
            r = rng.random()
            if r < f.drop_prob:
                continue
            if r < f.drop_prob + f.corrupt_prob:
                b ^= rng.randrange(1, 256)
            out.append(b)
    else:
        out = bytearray(data)
    if f.record:
        f.clean += data
        f.delivered += out
    return bytes(out)


class PtyPort:
    """The firmware's UART: the master side of a pseudo-terminal, non-blocking."""

    def __init__(
        self, faults: LineFaults | None = None, faults_to_host: LineFaults | None = None
    ) -> None:
        master, slave = os.openpty()
        tty.setraw(slave, termios.TCSANOW)  # no echo, no CR/LF translation
        fl = fcntl.fcntl(master, fcntl.F_GETFL)
        fcntl.fcntl(master, fcntl.F_SETFL, fl | os.O_NONBLOCK)
        self.master = master
        self._slave = slave  # kept open so the host can close and reopen its side
        self.path = os.ttyname(slave)
        self.faults = faults or LineFaults()
        self._rng = random.Random(self.faults.seed)
        self.faults_to_host = faults_to_host or LineFaults()
        self._rng_out = random.Random(self.faults_to_host.seed + 1)
        self.closed = False
        self.write_drops = 0
        self.rx_bytes = 0
        """Bytes read from the host, before any injected fault."""
        self.last_rx_s = 0.0
        """time.monotonic() of the last byte received."""

    def readinto(self, buf: bytearray) -> int | None:
        if self.closed:
            return None
        try:
            data = os.read(self.master, len(buf))
        except (BlockingIOError, InterruptedError):
            return None
        except OSError as exc:
            if exc.errno in (errno.EIO, errno.EAGAIN):
                return None  # the host side is closed right now
            raise
        if not data:
            return None
        self.last_rx_s = time.monotonic()
        self.rx_bytes += len(data)
        data = _apply_faults(data, self.faults, self._rng)
        n = len(data)
        buf[:n] = data
        return n

    def write(self, data: memoryview | bytes) -> int:
        if self.closed:
            return 0
        data = _apply_faults(bytes(data), self.faults_to_host, self._rng_out)
        try:
            return os.write(self.master, data)
        except (BlockingIOError, OSError):
            self.write_drops += 1  # host not reading: the line drops bytes, as a UART would
            return 0

    def pending(self) -> int:
        """Bytes the host wrote that the firmware has not read yet."""
        if self.closed:
            return 0
        buf = bytearray(4)
        try:
            fcntl.ioctl(self.master, termios.FIONREAD, buf)
        except OSError:
            return 0
        return int.from_bytes(buf, sys.byteorder)

    def close(self) -> None:
        """Pull the cable: both ends close; the host's reads fail."""
        if not self.closed:
            self.closed = True
            for fd in (self.master, self._slave):
                try:
                    os.close(fd)
                except OSError:
                    pass


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


def main(argv: list[str] | None = None) -> int:
    """`python -m vehicle.simboard`: run the simulated car in this process, print the pty
    path on the first line of stdout, serve until stdin closes or SIGTERM/SIGINT."""
    import argparse
    import signal

    p = argparse.ArgumentParser(prog="python -m vehicle.simboard", description=main.__doc__)
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
