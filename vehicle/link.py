"""The serial link from the car computer to the motor controller (pyserial).

Owns the port, a reader thread (frames in: telemetry, acks, version), a keeper thread
(heartbeat, command repeat), reconnection, and the typed errors. Runs on the car.

    with Link(LinkConfig(port="/dev/serial0")) as link:   # opens, handshakes (HELLO/VERSION)
        link.arm(PulseCalibration())          # limits to the firmware; waits for its ACK
        link.command(1450, 1400)              # pulse widths, microseconds
        t = link.telemetry()                  # latest Telemetry (battery_mv, faults, ...)
        link.neutral(); link.disarm()

Liveness: the keeper sends HEARTBEAT at `heartbeat_hz`; the firmware answers each with
TELEMETRY. If a heartbeat goes unanswered for `timeout_s` (no valid frame arrives after
it, and none is waiting unread), every call raises `LinkTimeout`. Silence is counted from
the first heartbeat sent after the last frame, not from the last frame: a host held back
by its own busy machine (its keeper sent nothing, or its reader has not read the answer
yet) is not a silent motor controller; the drive loop's deadline misses show that;
if the port itself fails (cable pulled, device gone) every call raises `LinkError` until
the reader has reconnected. If the reader thread itself fails on a frame (a payload it
cannot decode, a host bug), it sends neutral, stops, and every later call raises
`LinkReaderError` chained from the cause, rather than a timeout later on. Nothing here ever
returns "no data yet" for a dead link.

Commands: `command()` writes at once and the keeper re-sends the latest command at
`command_repeat_hz` while it is younger than `command_ttl_s`, so one corrupted frame
does not trip the firmware's 100 ms failsafe, yet a stalled drive loop still does (the
repeats stop after the TTL and the firmware times out on its own). After a reconnect the
firmware is disarmed or in failsafe: arming again is the caller's explicit decision.

Framing: every frame goes out as 0x00 + COBS frame + 0x00. The leading delimiter ends
whatever unfinished frame line noise (or a half-written frame before a reconnect) left in
the firmware's receiver, so the first frame after it is not merged into that junk and
lost; the receiver counts the junk as one bad frame and ignores the empty one. One byte a
frame (70 frames/s: 0.6 % of 115200 baud).
"""

from __future__ import annotations

import os
import select
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from vehicle.errors import LinkError, LinkReaderError, LinkTimeout, ProtocolError
from vehicle.firmware import protocol as P
from vehicle.pulses import PulseCalibration

_DELIMITER = b"\x00"  # sent before each frame: see Framing in the module docstring

STATE_NAMES = {P.STATE_DISARMED: "disarmed", P.STATE_ARMED: "armed", P.STATE_FAILSAFE: "failsafe"}
FAULT_NAMES = {
    P.FAULT_FAILSAFE: "failsafe",
    P.FAULT_CLAMPED: "clamped",
    P.FAULT_CMD_DISARMED: "command_while_disarmed",
    P.FAULT_LOOP_ERROR: "loop_error",
    P.FAULT_WATCHDOG_RESET: "watchdog_reset",
    P.FAULT_LOW_BATTERY: "low_battery",
    P.FAULT_RX_OVERFLOW: "rx_overflow",
}


@dataclass(frozen=True)
class LinkConfig:
    """How to reach the motor controller and how strict to be about it."""

    port: str
    """Serial device (e.g. /dev/serial0, /dev/ttyACM0, or a pty path in simulation)."""
    baud: int = 115200
    """Baud rate (ignored by ptys)."""
    timeout_s: float = 0.3
    """No valid frame from the firmware for this long = link lost (`LinkTimeout`)."""
    heartbeat_hz: float = 20.0
    """Heartbeats per second; each is answered by a telemetry frame."""
    command_repeat_hz: float = 50.0
    """How often the latest command is re-sent while fresh."""
    command_ttl_s: float = 0.1
    """A command older than this is not repeated (the firmware failsafe then acts)."""
    failsafe_timeout_ms: int = 100
    """Sent with ARM: the firmware goes to neutral after this long without a command."""
    center_on_failsafe: bool = False
    """Sent with ARM: centre steering on failsafe (else hold the last angle)."""
    reconnect: bool = True
    """Reopen the port after it fails."""
    reconnect_interval_s: float = 0.5
    """Wait between reopen attempts."""
    ack_timeout_s: float = 0.5
    """How long arm/disarm/hello wait for the firmware's answer."""
    write_timeout_s: float = 0.2
    """A write the port accepts no byte of for this long = port failed (`LinkError`)."""


@dataclass(frozen=True)
class Telemetry:
    """One telemetry frame from the firmware."""

    state: str
    """'disarmed', 'armed' or 'failsafe'."""
    faults: int
    """FAULT_* bits (see `fault_names`)."""
    battery_mv: int
    """Battery voltage, millivolts."""
    frames_ok: int
    """Valid frames the firmware received since boot."""
    frames_bad: int
    """Corrupt or unknown frames the firmware received since boot."""
    since_cmd_ms: int
    """Ms since the firmware's last valid command (65535 = none yet)."""
    steer_us: int
    """Steering pulse being output."""
    throttle_us: int
    """Throttle pulse being output."""
    loop_errors: int
    """Exceptions the firmware loop caught."""
    last_cmd_seq: int
    """Sequence number of the last command applied."""
    uptime_ms: int
    """Firmware uptime."""
    failsafes: int
    """Failsafe trips since boot."""
    received_s: float
    """Host time.monotonic() when the frame arrived."""

    @property
    def battery_v(self) -> float:
        return self.battery_mv / 1000.0

    @property
    def fault_names(self) -> list[str]:
        return [name for bit, name in FAULT_NAMES.items() if self.faults & bit]

    def to_dict(self) -> dict[str, Any]:
        out = {f: getattr(self, f) for f in P.TELEMETRY_FIELDS}
        out["state"] = self.state
        out["fault_names"] = self.fault_names
        return out


@dataclass(frozen=True)
class FirmwareInfo:
    """The firmware's VERSION answer."""

    protocol: int
    version: str
    watchdog_reset: bool
    uptime_ms: int


@dataclass
class LinkStats:
    """Host-side counters."""

    frames_ok: int = 0
    """Valid frames received."""
    frames_bad: int = 0
    """Corrupt frames received (host parser)."""
    commands_sent: int = 0
    """Command frames written (including repeats)."""
    reconnects: int = 0
    """Successful reopenings of the port."""
    bytes_sent: int = 0
    """Bytes written to the port (all frames)."""
    errors: int = 0
    """Port failures seen."""


def _default_serial(config: LinkConfig) -> Any:
    import serial  # pyserial, on the car

    # exclusive: a second program (or a forgotten link still reconnecting to the path)
    # that opens the same port would read frames meant for this one; pyserial reports
    # that as "device reports readiness to read but returned no data". With the lock
    # (flock) the second opener is refused instead.
    return serial.Serial(
        config.port,
        config.baud,
        timeout=0.02,
        write_timeout=config.write_timeout_s,
        exclusive=True,
    )


def _write_all(ser: Any, data: bytes, timeout_s: float) -> None:
    """Write every byte of `data`; `TimeoutError` only if the port accepts no byte for
    `timeout_s`.

    Not pyserial's `write(write_timeout=...)`: that raises once `write_timeout` of wall
    time has passed since the call began, even when every byte was accepted (it checks
    the clock after the write and after a select that found the port writable). A thread
    the scheduler or the GIL holds back for 0.2 s (a loaded CPU; the simulated firmware
    sharing the interpreter) then reported a delivered frame as a dead port, and the link
    was dropped. Here only a port that stays unwritable counts: the clock restarts with
    every byte accepted, and a writable port is written to however late we got to look.
    Ports without a file descriptor (`loop://`, test doubles, Windows) use their own
    `write`, whose timeout the factory set."""
    try:
        fd = ser.fileno()
    except (AttributeError, OSError, ValueError):  # io.UnsupportedOperation is both
        ser.write(data)
        return
    view = memoryview(data)
    while view:
        _, writable, _ = select.select([], [fd], [], timeout_s)
        if not writable:
            raise TimeoutError(
                f"the port accepted none of {len(view)} bytes for {timeout_s * 1000:.0f} ms"
            )
        try:
            n = os.write(fd, view)  # pyserial opens the port non-blocking
        except BlockingIOError:
            n = 0
        view = view[n:]


class Link:
    """A live connection to the motor controller. Thread-safe for one driver thread plus
    readers of `telemetry()`/`state`."""

    def __init__(
        self, config: LinkConfig, *, serial_factory: Callable[[LinkConfig], Any] | None = None
    ) -> None:
        self.config = config
        self.stats = LinkStats()
        self._factory = serial_factory or _default_serial
        self._ser: Any = None
        self._lock = threading.RLock()  # guards _ser writes and the encoder
        self._enc = P.Encoder()
        self._parser = P.Parser(P.TO_HOST)
        self._seq = 0
        self._cond = threading.Condition()
        self._acks: dict[tuple[int, int], int] = {}
        self._version: FirmwareInfo | None = None
        self._telemetry: Telemetry | None = None
        self._last_rx = 0.0
        self._unanswered_since: float | None = None
        """When the first heartbeat after the last frame received was sent (None: none since)."""
        self._port_error: BaseException | None = None
        self._reader_error: BaseException | None = None
        self._closed = False
        self._opened = False
        self._cmd: tuple[int, int] | None = None
        self._cmd_time = 0.0
        self._calibration: PulseCalibration | None = None
        self._threads: list[threading.Thread] = []

    # -- lifecycle ---------------------------------------------------------------------

    def open(self) -> Link:
        """Open the port, start the threads, and handshake (HELLO -> VERSION)."""
        self._open_port()
        self._opened = True
        for target, name in ((self._reader, "link-reader"), (self._keeper, "link-keeper")):
            t = threading.Thread(target=target, name=name, daemon=True)
            t.start()
            self._threads.append(t)
        try:
            self.hello()
        except BaseException:
            self.close()  # no reader left behind, reopening the path later
            raise
        return self

    def __enter__(self) -> Link:
        return self.open()

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Best effort neutral + disarm, then close the port and stop the threads."""
        if self._closed:
            return
        try:
            if self._port_error is None and self._ser is not None:
                self._cmd = None
                self._write_frame(lambda s: self._enc.frame(P.MSG_DISARM, s, 0))
        except Exception:
            pass
        self._closed = True
        with self._cond:
            self._cond.notify_all()
        for t in self._threads:
            t.join(timeout=1.0)
        with self._lock:
            if self._ser is not None:
                try:
                    self._ser.close()
                except Exception:
                    pass
                self._ser = None

    def _open_port(self) -> None:
        try:
            ser = self._factory(self.config)
        except Exception as exc:
            raise LinkError(
                f"serial port {self.config.port}: cannot open ({exc}); check the cable and "
                "the device name (ls /dev/serial* /dev/ttyACM*), and that no other program "
                "holds it"
            ) from exc
        with self._lock:
            if self._closed:  # closed while the reader was reopening: do not leak the port
                try:
                    ser.close()
                except Exception:
                    pass
                raise LinkError(f"serial link {self.config.port} is closed")
            self._ser = ser
            self._parser.reset()
            self._port_error = None
            self._last_rx = time.monotonic()
            self._unanswered_since = None

    # -- state -------------------------------------------------------------------------

    @property
    def state(self) -> str:
        """'up', 'timeout', 'lost' (port failed), 'failed' (reader thread failed),
        'closed' or 'not-open'."""
        if self._closed:
            return "closed"
        if not self._opened:
            return "not-open"
        if self._reader_error is not None:
            return "failed"
        if self._port_error is not None:
            return "lost"
        if self._silence_s() > self.config.timeout_s:
            return "timeout"
        return "up"

    def _silence_s(self) -> float:
        """How long the motor controller has left a heartbeat unanswered: 0 when it has
        answered every one, or when its answer is waiting unread in the port."""
        since = self._unanswered_since
        if since is None:
            if self._keeper_alive():
                return 0.0
            since = self._last_rx  # no keeper sends heartbeats: any quiet counts
        silence = time.monotonic() - since
        if silence > self.config.timeout_s and self._input_waiting():
            return 0.0
        return silence

    def _keeper_alive(self) -> bool:
        """The keeper thread runs (or the link is not open yet)."""
        keeper = next((t for t in self._threads if t.name == "link-keeper"), None)
        return keeper is None or keeper.is_alive()

    def _input_waiting(self) -> bool:
        """Bytes from the controller wait in the port that the reader has not read yet."""
        ser = self._ser
        try:
            return ser is not None and int(ser.in_waiting) > 0
        except Exception:
            return False

    @property
    def _broken(self) -> bool:
        """The port failed or the reader thread did: waiting for an answer is pointless."""
        return self._port_error is not None or self._reader_error is not None

    def check(self) -> None:
        """Raise if the link is not usable right now."""
        if self._closed:
            raise LinkError(f"serial link {self.config.port} is closed")
        if not self._opened:
            raise LinkError(f"serial link {self.config.port} was never opened; call open()")
        failure = self._reader_error
        if failure is not None:
            raise LinkReaderError(
                f"serial link {self.config.port}: the reader thread failed on a frame from "
                f"the motor controller ({type(failure).__name__}: {failure}); the car was "
                "sent to neutral. Close and reopen the link (restart `racer drive`); if it "
                "happens again, check that host and firmware versions match "
                "(`racer firmware flash`)"
            ) from failure
        err = self._port_error
        if err is not None:
            raise LinkError(
                f"serial link {self.config.port} lost: {err}; check the cable to the motor "
                "controller"
            ) from err
        silence = self._silence_s()
        if silence > self.config.timeout_s:
            last = time.monotonic() - self._last_rx
            raise LinkTimeout(
                f"motor controller on {self.config.port} silent for {silence * 1000:.0f} ms "
                f"(limit {self.config.timeout_s * 1000:.0f} ms; heartbeats unanswered, last "
                f"frame {last * 1000:.0f} ms ago); is the firmware running and the baud rate "
                "right?"
            )

    @property
    def firmware(self) -> FirmwareInfo | None:
        return self._version

    @property
    def armed_calibration(self) -> PulseCalibration | None:
        return self._calibration

    # -- requests ----------------------------------------------------------------------

    def hello(self) -> FirmwareInfo:
        """Ask the firmware for its version; raise if it does not answer or speaks
        another protocol version."""
        self._version = None
        for _attempt in range(3):  # a frame lost on a noisy line is retried
            deadline = time.monotonic() + self.config.ack_timeout_s / 3
            self._write_frame(lambda s: self._enc.frame(P.MSG_HELLO, s, 0))
            with self._cond:
                while self._version is None and not self._closed:
                    left = deadline - time.monotonic()
                    if left <= 0 or self._broken:
                        break
                    self._cond.wait(min(left, 0.05))
            if self._version is not None or self._broken:
                break
        info = self._version
        if info is None:
            if self._broken or self._closed:
                self.check()
            raise LinkTimeout(
                f"motor controller on {self.config.port} did not answer HELLO within "
                f"{self.config.ack_timeout_s * 1000:.0f} ms; is the openracer firmware "
                "flashed (`racer firmware flash`)?"
            )
        if info.protocol != P.PROTOCOL_VERSION:
            raise ProtocolError(
                f"motor controller speaks protocol {info.protocol}, this host "
                f"{P.PROTOCOL_VERSION}; update the firmware with `racer firmware flash`"
            )
        return info

    def arm(self, calibration: PulseCalibration, *, timeout_ms: int | None = None) -> None:
        """Send the calibrated limits and arm; waits for the firmware's ACK."""
        self.check()
        s, t = calibration.steering, calibration.throttle
        timeout = self.config.failsafe_timeout_ms if timeout_ms is None else timeout_ms
        flags = P.FLAG_CENTER_ON_FAILSAFE if self.config.center_on_failsafe else 0
        self._cmd = None
        status = self._request(
            P.MSG_ARM,
            lambda q: self._enc.arm(
                q, s.min_us, s.mid_us, s.max_us, t.min_us, t.mid_us, t.max_us, timeout, flags
            ),
        )
        if status == P.STATUS_BAD_LIMITS:
            raise ProtocolError(
                f"motor controller refused the calibration {calibration.to_dict()}: limits "
                f"must satisfy {P.PULSE_MIN_US} <= min < mid < max <= {P.PULSE_MAX_US} us"
            )
        if status == P.STATUS_BAD_TIMEOUT:
            raise ProtocolError(
                f"motor controller refused failsafe timeout {timeout} ms; use "
                f"{P.TIMEOUT_MIN_MS}-{P.TIMEOUT_MAX_MS} ms"
            )
        if status != P.STATUS_OK:
            raise ProtocolError(f"motor controller refused ARM with status {status}")
        self._calibration = calibration

    def disarm(self) -> None:
        """Throttle neutral, steering centred, commands ignored until the next arm; waits
        for the firmware's ACK.

        Sent even when the firmware has been quiet for longer than `timeout_s`: it may
        only be late, and disarming is the safe direction. (Checking first skipped the
        DISARM after a telemetry gap at the moment a drive ended, and the firmware stayed
        armed in failsafe.) A closed or failed port still raises at once."""
        self._cmd = None
        if self._closed or not self._opened or self._broken:
            self.check()
        self._request(P.MSG_DISARM, lambda q: self._enc.frame(P.MSG_DISARM, q, 0))

    def command(self, steer_us: int, throttle_us: int) -> None:
        """Set the pulse widths (microseconds) now; repeated while fresh."""
        self.check()
        steer_us, throttle_us = int(steer_us), int(throttle_us)
        if not (P.PULSE_MIN_US <= steer_us <= P.PULSE_MAX_US) or not (
            P.PULSE_MIN_US <= throttle_us <= P.PULSE_MAX_US
        ):
            raise LinkError(
                f"pulse widths steer {steer_us} us / throttle {throttle_us} us are outside "
                f"{P.PULSE_MIN_US}-{P.PULSE_MAX_US} us; map actions through vehicle.pulses"
            )
        self._cmd = (steer_us, throttle_us)
        self._cmd_time = time.monotonic()
        self._send_command()

    def neutral(self) -> None:
        """Throttle to neutral now (steering centred). Uses the armed calibration's mids;
        before any arm, disarms instead. Never raises: this is the safety path."""
        cal = self._calibration
        try:
            if cal is None:
                self._cmd = None
                self._write_frame(lambda s: self._enc.frame(P.MSG_DISARM, s, 0))
            else:
                self._cmd = cal.neutral_us()
                self._cmd_time = time.monotonic()
                self._send_command()
        except Exception:
            self.stats.errors += 1

    def telemetry(self, *, max_age_s: float | None = None) -> Telemetry:
        """The latest telemetry; raises `LinkTimeout`/`LinkError` if the link is dead or
        no telemetry newer than `max_age_s` (default: the link timeout) arrives soon."""
        if self._closed or self._broken:
            self.check()  # a dead port never hands out its last telemetry
        limit = self.config.timeout_s if max_age_s is None else max_age_s
        deadline = time.monotonic() + limit
        with self._cond:
            while True:
                tel = self._telemetry
                now = time.monotonic()
                if tel is not None and now - tel.received_s <= limit:
                    return tel
                if now >= deadline or self._closed or self._broken:
                    break
                self._cond.wait(min(deadline - now, 0.05))
        self.check()
        raise LinkTimeout(
            f"no telemetry from the motor controller on {self.config.port} within "
            f"{limit * 1000:.0f} ms"
        )

    def latest_telemetry(self) -> Telemetry | None:
        """The newest telemetry received, without waiting (None before the first);
        for display and logging. Liveness is `check()`'s job."""
        return self._telemetry

    # -- internals ---------------------------------------------------------------------

    def _next_seq(self) -> int:
        self._seq = (self._seq + 1) & 0xFF
        return self._seq

    def _write_frame(self, build: Callable[[int], int]) -> int:
        with self._lock:
            ser = self._ser
            if ser is None or self._port_error is not None:
                self.check()
                raise LinkError(f"serial link {self.config.port} is not open")
            seq = self._next_seq()
            n = build(seq)
            try:
                _write_all(ser, _DELIMITER + bytes(self._enc.out[:n]), self.config.write_timeout_s)
                self.stats.bytes_sent += n + 1
            except Exception as exc:
                self._fail(exc)
                raise LinkError(
                    f"serial link {self.config.port}: write failed ({exc}); the cable to "
                    "the motor controller is probably disconnected"
                ) from exc
            return seq

    def _send_command(self) -> None:
        cmd = self._cmd
        if cmd is None:
            return
        self._write_frame(lambda q: self._enc.command(q, cmd[0], cmd[1]))
        self.stats.commands_sent += 1

    def _request(self, msg_id: int, build: Callable[[int], int]) -> int:
        """Write a frame and wait for its ACK; returns the status. Three attempts (a
        frame lost on a noisy line is retried)."""
        for _attempt in range(3):
            seq = self._write_frame(build)
            deadline = time.monotonic() + self.config.ack_timeout_s
            with self._cond:
                while (msg_id, seq) not in self._acks:
                    left = deadline - time.monotonic()
                    if left <= 0 or self._closed or self._broken:
                        break
                    self._cond.wait(min(left, 0.05))
                status = self._acks.pop((msg_id, seq), None)
            if status is not None:
                return status
            self.check()
        raise LinkTimeout(
            f"motor controller on {self.config.port} did not acknowledge message "
            f"0x{msg_id:02x} within {self.config.ack_timeout_s * 1000:.0f} ms (3 attempts)"
        )

    def _fail(self, exc: BaseException) -> None:
        with self._lock:
            if self._port_error is None:
                self._port_error = exc
                self.stats.errors += 1
            ser, self._ser = self._ser, None
        if ser is not None:
            try:
                ser.close()
            except Exception:
                pass
        with self._cond:
            self._cond.notify_all()

    def _on_frame(self, parser: P.Parser, msg_id: int) -> None:
        now = time.monotonic()
        self._last_rx = now
        self._unanswered_since = None
        self.stats.frames_ok += 1
        frame = parser.frame
        with self._cond:
            if msg_id == P.MSG_TELEMETRY:
                v = P.unpack_telemetry(frame)
                values: dict[str, Any] = dict(zip(P.TELEMETRY_FIELDS, v, strict=True))
                values["state"] = STATE_NAMES.get(v[0], f"unknown({v[0]})")
                self._telemetry = Telemetry(**values, received_s=now)
            elif msg_id == P.MSG_ACK:
                acked_id, acked_seq, status = P.unpack_ack(frame)
                self._acks[(acked_id, acked_seq)] = status
                if len(self._acks) > 64:
                    self._acks.pop(next(iter(self._acks)))
            elif msg_id == P.MSG_VERSION:
                proto, major, minor, patch, boot, up = P.unpack_version(frame)
                self._version = FirmwareInfo(proto, f"{major}.{minor}.{patch}", bool(boot & 1), up)
            self._cond.notify_all()

    def _reader(self) -> None:
        handler = self._on_frame
        while not self._closed:
            ser = self._ser
            if ser is None:
                if not self.config.reconnect:
                    time.sleep(0.05)
                    continue
                time.sleep(self.config.reconnect_interval_s)
                if self._closed:
                    return
                try:
                    self._open_port()
                except LinkError:
                    continue
                self.stats.reconnects += 1
                continue
            try:
                data = ser.read(max(1, ser.in_waiting))
            except Exception as exc:
                if not self._closed:
                    self._fail(exc)
                continue
            if data:
                bad0 = self._parser.bad
                try:
                    self._parser.feed_into(data, len(data), handler)
                except Exception as exc:
                    self._reader_failed(exc)
                    return
                self.stats.frames_bad += self._parser.bad - bad0

    def _reader_failed(self, exc: BaseException) -> None:
        """The reader cannot go on: record why (every later call raises it, chained),
        throttle to neutral, wake every waiter. The firmware's own failsafe covers a
        command that raced past: the keeper stops repeating it after the TTL."""
        self._reader_error = exc
        self.stats.errors += 1
        self.neutral()
        with self._cond:
            self._cond.notify_all()

    def _keeper(self) -> None:
        hb_period = 1.0 / self.config.heartbeat_hz
        cmd_period = 1.0 / self.config.command_repeat_hz
        next_hb = next_cmd = time.monotonic()
        while not self._closed:
            now = time.monotonic()
            try:
                if self._ser is not None and self._port_error is None:
                    if now >= next_hb:
                        next_hb = now + hb_period
                        if self._unanswered_since is None:  # before the write: its answer clears it
                            self._unanswered_since = now
                        self._write_frame(lambda s: self._enc.frame(P.MSG_HEARTBEAT, s, 0))
                    if now >= next_cmd:
                        next_cmd = now + cmd_period
                        if (
                            self._cmd is not None
                            and now - self._cmd_time <= self.config.command_ttl_s
                        ):
                            self._send_command()
            except LinkError:
                pass  # recorded in _port_error; callers see it via check()
            time.sleep(max(0.0, min(next_hb, next_cmd) - time.monotonic()))
