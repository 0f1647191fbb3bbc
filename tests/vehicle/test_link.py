"""vehicle.link against the real firmware code on a simulated board, over a real pty."""

from __future__ import annotations

import os
import time
import types

import pytest

from sim2real.hil.board import SimulatedFirmware
from sim2real.hil.line import LineFaults
from vehicle.errors import LinkError, LinkReaderError, LinkTimeout, ProtocolError
from vehicle.firmware import protocol as P
from vehicle.link import Link, LinkConfig
from vehicle.pulses import PulseCalibration


@pytest.fixture
def sim():
    s = SimulatedFirmware.start(realtime_physics=True)
    yield s
    s.stop()


# The link's silence limit in these tests: the firmware is a thread of this process, and a
# loaded machine can hold it (or the link's reader) back for longer than the car's 0.3 s.
SIM_SILENCE_S = 2.0


def _wait(cond, timeout=2.0):
    """Whether `cond()` holds within `timeout` s; asked once more at the end, since a thread
    the machine held back past the deadline has not looked yet."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if cond():
            return True
        time.sleep(0.005)
    return bool(cond())


def test_handshake_arm_command_telemetry(sim):
    # the command is held (repeated for 30 s, firmware failsafe 2 s) while the test looks,
    # however late a loaded machine lets it look; the failsafe has tests of its own
    cfg = LinkConfig(port=sim.port, timeout_s=SIM_SILENCE_S, command_ttl_s=30.0)
    with Link(cfg) as link:
        assert link.firmware.protocol == P.PROTOCOL_VERSION
        tel = link.telemetry()
        assert tel.state == "disarmed"
        assert 7000 < tel.battery_mv < 8500  # the simulated 2S pack through the divider
        link.arm(PulseCalibration(), timeout_ms=2000)
        assert _wait(lambda: link.telemetry().state == "armed")
        for _ in range(20):
            link.command(1575, 1380)
            time.sleep(0.01)
        # the firmware thread takes the last frames a moment later
        assert _wait(lambda: sim.board.steer_pin.duty_ns == 1575_000)
        assert sim.board.throttle_pin.duty_ns == 1380_000
        assert _wait(lambda: sim.physics.speed_mps > 0.3)
        assert _wait(
            lambda: (link.telemetry().steer_us, link.telemetry().throttle_us) == (1575, 1380)
        )
        tel = link.telemetry()
        assert tel.frames_bad == 0 and link.stats.frames_bad == 0
        link.neutral()
        assert _wait(lambda: sim.board.throttle_pin.duty_ns == 1446_000)
        link.disarm()
        assert _wait(lambda: link.telemetry().state == "disarmed")


def test_firmware_clamps_to_armed_limits(sim):
    with Link(LinkConfig(port=sim.port, timeout_s=SIM_SILENCE_S)) as link:
        link.arm(PulseCalibration())
        for _ in range(5):
            link.command(2400, 700)
            time.sleep(0.01)
        assert _wait(lambda: sim.board.steer_pin.duty_ns == 1700_000)
        assert sim.board.throttle_pin.duty_ns == 1311_000
        assert _wait(lambda: "clamped" in link.telemetry().fault_names)


def test_refused_arm_is_an_error(sim):
    with Link(LinkConfig(port=sim.port, timeout_s=SIM_SILENCE_S)) as link:
        with pytest.raises(ProtocolError, match="failsafe timeout"):
            link.arm(PulseCalibration(), timeout_ms=5)
        assert link.telemetry().state == "disarmed"


def _hold_one_command(link: Link, sim: SimulatedFirmware) -> tuple[float, int] | None:
    """Arm, send one command, wait for the firmware's failsafe: how long the throttle was
    held and how many repeats the keeper sent. None when the firmware tripped while the
    command was still fresh and the keeper was repeating it: this process (the keeper and
    the firmware are its threads) was held back longer than the failsafe timeout, and the
    firmware rightly went to neutral; such a trial says nothing about the keeper."""
    link.arm(PulseCalibration())
    sent0 = link.stats.commands_sent
    log0 = len(sim.board.pulse_log)
    t_cmd = time.monotonic()
    link.command(1450, 1380)
    assert _wait(lambda: link.telemetry().state == "failsafe", 30.0)
    assert sim.board.throttle_pin.duty_ns == 1446_000
    throttle = [(t, us) for t, which, us in sim.board.pulse_log[log0:] if which == "throttle"]
    t_on = next(t for t, us in throttle if us == 1380)
    t_off = next(t for t, us in throttle if us == 1446 and t > t_on)
    repeats = link.stats.commands_sent - sent0 - 1
    if t_off < t_cmd + link.config.command_ttl_s and repeats >= 5:
        return None
    return t_off - t_on, repeats


def test_commands_repeat_while_fresh_then_stop_and_firmware_fails_safe(sim):
    """One command with a 3 s TTL against a 1 s firmware failsafe: the keeper's repeats
    hold the throttle for the TTL (without them the firmware would trip 1 s after the
    command), then stop, and the firmware fails safe on its own. (The car's 100 ms
    failsafe would ask this test process's threads to run every 100 ms on a loaded
    machine; the firmware's own timing is tested on its simulated clock in
    test_firmware.py.) A trial in which the machine held this process back for longer
    than the failsafe is tried again, up to three times."""
    cfg = LinkConfig(
        port=sim.port, timeout_s=SIM_SILENCE_S, command_ttl_s=3.0, failsafe_timeout_ms=1000
    )
    with Link(cfg) as link:
        for _ in range(3):
            failsafes0 = link.telemetry().failsafes
            held = _hold_one_command(link, sim)
            if held is not None:
                break
        else:
            pytest.fail("in 3 trials this process was held back > 1 s while repeating")
        held_s, repeats = held
        assert held_s >= 2.5, f"throttle held {held_s * 1000:.0f} ms: commands not repeated"
        assert 5 <= repeats <= 3.0 * cfg.command_repeat_hz + 2, repeats
        sent = link.stats.commands_sent
        time.sleep(0.2)  # stale since the TTL ended: nothing more is sent
        assert link.stats.commands_sent == sent
        assert link.telemetry().failsafes == failsafes0 + 1


def test_a_reader_failure_goes_neutral_and_the_next_call_raises_it(sim, monkeypatch):
    """A frame the reader thread cannot handle: the car goes to neutral at once (the
    keeper would otherwise hold the throttle for the long TTL) and the next call raises
    `LinkReaderError` chained from the cause, not a timeout seconds later."""
    cfg = LinkConfig(port=sim.port, timeout_s=5.0, command_ttl_s=10.0)
    link = Link(cfg).open()
    try:
        link.arm(PulseCalibration(), timeout_ms=2000)
        link.command(1450, 1380)
        assert _wait(lambda: sim.board.throttle_pin.duty_ns == 1380_000)

        def garbled(frame):
            raise ValueError("telemetry payload of 3 bytes, expected 24")

        monkeypatch.setattr(P, "unpack_telemetry", garbled)
        assert _wait(lambda: link.state == "failed")
        # well inside the 10 s TTL; the state below tells the host's neutral from a failsafe
        assert _wait(lambda: sim.board.throttle_pin.duty_ns == 1446_000, 5.0)
        assert sim.controller.state == P.STATE_ARMED  # the host's neutral, not a failsafe
        t0 = time.monotonic()
        with pytest.raises(LinkReaderError, match="reader thread failed.*neutral") as info:
            link.telemetry()
        assert time.monotonic() - t0 < 2.5  # at once, not after the 5 s timeout
        assert isinstance(info.value.__cause__, ValueError)
        with pytest.raises(LinkReaderError):
            link.command(1450, 1380)
        assert sim.board.throttle_pin.duty_ns == 1446_000
    finally:
        link.close()


def test_dead_link_raises_never_looks_like_no_data(sim):
    with Link(LinkConfig(port=sim.port, timeout_s=SIM_SILENCE_S, reconnect=False)) as link:
        link.arm(PulseCalibration())
        link.command(1450, 1400)
        sim.cut_cable()
        assert _wait(lambda: link.state == "lost", 10.0)
        with pytest.raises(LinkError):
            link.telemetry()
        with pytest.raises(LinkError):
            link.command(1450, 1400)
        link.neutral()  # the safety path never raises


def test_silent_device_times_out():
    master, slave = os.openpty()
    try:
        path = os.ttyname(slave)
        with pytest.raises(LinkTimeout, match="did not answer HELLO"):
            Link(LinkConfig(port=path, ack_timeout_s=0.3)).open().close()
    finally:
        os.close(master)
        os.close(slave)


def test_missing_port_is_a_clear_error(tmp_path):
    with pytest.raises(LinkError, match="cannot open"):
        Link(LinkConfig(port=str(tmp_path / "ttyNONE"))).open()


def test_telemetry_timeout_when_firmware_stops_answering(sim):
    with Link(LinkConfig(port=sim.port, timeout_s=0.2)) as link:
        link.telemetry()
        sim._stop.set()  # the firmware loop ends; the port stays open
        time.sleep(0.35)
        assert link.state == "timeout"
        with pytest.raises(LinkTimeout):
            link.telemetry()
        with pytest.raises(LinkTimeout):
            link.command(1450, 1446)


def test_reconnects_after_a_port_failure(sim):
    import serial

    opened = []

    class Flaky(serial.Serial):
        reads = 0

        def read(self, size=1):
            Flaky.reads += 1
            if len(opened) == 1 and Flaky.reads == 30:
                raise serial.SerialException("simulated USB hiccup")
            return super().read(size)

    def factory(cfg):
        opened.append(1)
        return Flaky(cfg.port, cfg.baud, timeout=0.02)

    cfg = LinkConfig(port=sim.port, timeout_s=SIM_SILENCE_S, reconnect_interval_s=0.05)
    with Link(cfg, serial_factory=factory) as link:
        assert _wait(lambda: link.stats.reconnects == 1, 10.0)
        assert _wait(lambda: link.state == "up", 10.0)
        link.hello()
        link.arm(PulseCalibration())
        link.command(1500, 1400)
        assert _wait(lambda: sim.board.throttle_pin.duty_ns == 1400_000)
        assert link.stats.errors == 1


def _expected_bad(f: LineFaults) -> tuple[int, int]:
    """(bad, good) frames a receiver must count for the bytes it got: chunks between
    delimiters that are not byte-identical to a chunk that was sent."""
    sent = set(bytes(f.clean).split(b"\x00"))
    chunks = [c for c in bytes(f.delivered).split(b"\x00")[:-1] if c]
    good = sum(1 for c in chunks if c in sent)
    return len(chunks) - good, good


def test_one_percent_corruption_and_drops_both_ways():
    """1 % of bytes corrupted or dropped in both directions for 150 commands: the link
    stays up, no corrupted command is ever applied, and the firmware's and the host's
    bad-frame counters equal what the injected faults broke."""
    down = LineFaults(corrupt_prob=0.005, drop_prob=0.005, seed=7, record=True)
    up = LineFaults(corrupt_prob=0.005, drop_prob=0.005, seed=8, record=True)
    sim = SimulatedFirmware.start(faults=down, faults_to_host=up)
    try:
        # a failsafe a loaded machine cannot trip: this test is about the bytes, and the
        # firmware here is a thread of this process (its 100 ms timing: test_firmware.py)
        cfg = LinkConfig(port=sim.port, timeout_s=SIM_SILENCE_S)
        with Link(cfg) as link:
            link.arm(PulseCalibration(), timeout_ms=2000)
            sent = set()
            for k in range(1, 151):  # 3 s of commands at 50 Hz (longer on a loaded machine)
                cmd = (1300 + k % 300, 1350 + k % 90)
                sent.add(cmd)
                link.command(*cmd)
                time.sleep(0.02)
                assert link.state == "up", link._port_error
            link.neutral()
            time.sleep(0.1)
            ctrl = sim.controller
            ok_steer = {s for s, _ in sent} | {1450}
            ok_throttle = {t for _, t in sent} | {1446}
            stray = [
                (which, us)
                for _, which, us in sim.board.pulse_log
                if us not in (ok_steer if which == "steer" else ok_throttle)
            ]
            assert not stray, f"pulse widths never commanded were applied: {stray[:5]}"
            assert len(sim.board.pulse_log) > 100, f"firmware state {sim.controller.state}"
            # freeze the counters: stop the firmware's thread but keep the line open (closing
            # it would drop what the host has not read yet)
            sim._stop.set()
            for t in sim._threads:
                t.join(timeout=10.0)
            exp_bad, exp_good = _expected_bad(down)
            assert exp_bad > 10, "the fault injection did not break frames; test is void"
            assert ctrl.parser.bad == exp_bad
            assert ctrl.parser.good == exp_good
            host_bad, host_good = _expected_bad(up)
            # The firmware has stopped sending; the host's reader may still be parsing the
            # last frames that were in flight (a loaded machine schedules it late): wait
            # until it has read everything, then compare.
            _wait(lambda: link.stats.frames_ok + link.stats.frames_bad >= host_good + host_bad, 30)
            assert link.stats.frames_bad == host_bad
            assert link.stats.frames_ok == host_good
    finally:
        sim.stop()


def _noise_then_one_command(link: Link, noise: bytes, cmd: tuple[int, int]) -> None:
    """Line noise (an unfinished frame: no 0x00) then exactly one command frame, both
    under the write lock, so no heartbeat slips between them."""
    with link._lock:
        link._ser.write(noise)
        link.command(*cmd)


@pytest.mark.parametrize(
    "noise", [b"\x55", b"\x13\x77\xa5\x03\xff\x41", bytes(range(1, 40))], ids=["1", "6", "39"]
)
def test_first_command_after_line_noise_is_applied(sim, noise):
    """Noise leaves an unfinished frame in the firmware's receiver; the host's leading
    0x00 ends it, so the very next frame is applied (before, it merged with the noise
    into one bad frame and was lost). No repeats: the keeper does not re-send it."""
    cfg = LinkConfig(
        port=sim.port, timeout_s=SIM_SILENCE_S, command_repeat_hz=0.01, failsafe_timeout_ms=500
    )
    with Link(cfg) as link:
        link.arm(PulseCalibration(), timeout_ms=500)
        assert _wait(lambda: link.telemetry().state == "armed")
        ctrl = sim.controller
        bad0, sent0 = ctrl.parser.bad, link.stats.commands_sent
        _noise_then_one_command(link, noise, (1575, 1380))
        assert _wait(lambda: sim.board.steer_pin.duty_ns == 1575_000, 1.0)
        assert sim.board.throttle_pin.duty_ns == 1380_000
        assert link.stats.commands_sent == sent0 + 1  # the one frame, no repeat
        assert ctrl.parser.bad == bad0 + 1  # the noise alone, counted once


def test_every_frame_starts_with_a_delimiter():
    """What the host writes: 0x00, a COBS frame, 0x00; bytes_sent counts all of it."""
    written: list[bytes] = []

    class Port:
        in_waiting = 0

        def write(self, data: bytes) -> int:
            written.append(bytes(data))
            return len(data)

        def read(self, n: int) -> bytes:
            time.sleep(0.01)
            return b""

        def close(self) -> None:
            pass

    link = Link(LinkConfig(port="fake"), serial_factory=lambda cfg: Port())
    link._open_port()
    link._write_frame(lambda s: link._enc.command(s, 1500, 1400))
    (frame,) = written
    assert frame[0] == 0 and frame[-1] == 0 and 0 not in frame[1:-1]
    assert P.decode(frame[1:])[0] == P.MSG_COMMAND
    assert link.stats.bytes_sent == len(frame)


def test_a_write_the_scheduler_holds_back_is_not_a_dead_port(sim, monkeypatch):
    """A loaded machine can keep the writing thread off the CPU (or off the GIL) for longer
    than the write timeout after the port took the bytes. pyserial's own write_timeout
    then raised 'Write timeout' for a delivered frame and the link was dropped; a write
    times out only when the port accepts nothing."""
    import vehicle.link as link_module

    real_write = os.write
    held_back = []

    def late_write(fd: int, data: bytes) -> int:
        n = real_write(fd, data)
        if not held_back:
            held_back.append(n)
            time.sleep(0.4)  # > write_timeout_s: the thread gets the CPU back late
        return n

    with Link(LinkConfig(port=sim.port, write_timeout_s=0.2, timeout_s=2.0)) as link:
        link.arm(PulseCalibration())
        # the link's writes only (the firmware's pty writes keep the real os.write)
        monkeypatch.setattr(link_module, "os", types.SimpleNamespace(write=late_write))
        link.command(1500, 1400)
        monkeypatch.undo()
        assert held_back
        assert link.state == "up" and link.stats.errors == 0
        assert _wait(lambda: 1400 in {us for _, w, us in sim.board.pulse_log if w == "throttle"})


def test_a_port_that_accepts_nothing_is_lost_after_the_write_timeout():
    """Nobody reads the other end (a device that stopped taking bytes): once the port's
    buffer is full a write waits `write_timeout_s`, then the link is lost, loudly."""
    master, slave = os.openpty()
    try:
        link = Link(LinkConfig(port=os.ttyname(slave), write_timeout_s=0.05, reconnect=False))
        link._open_port()
        link._opened = True
        with pytest.raises(LinkError, match="accepted none"):
            for _ in range(100_000):  # a pty holds a few kB
                link._write_frame(lambda s: link._enc.command(s, 1500, 1400))
        assert link.state == "lost"
        with pytest.raises(LinkError, match="lost"):
            link.command(1500, 1400)
    finally:
        link.close()
        os.close(master)
        os.close(slave)


def test_a_second_opener_of_the_port_is_refused(sim):
    """Two links on one port would each read part of the other's frames (pyserial then
    reports 'readiness to read but returned no data'); the port is locked instead."""
    with Link(LinkConfig(port=sim.port, timeout_s=SIM_SILENCE_S)) as link:
        with pytest.raises(LinkError, match="cannot open"):
            Link(LinkConfig(port=sim.port, reconnect=False)).open()
        link.arm(PulseCalibration())
        assert link.state == "up" and link.stats.errors == 0


def test_a_link_closed_while_reconnecting_closes_the_port_it_reopened():
    """close() while the reader is reopening the port: the reopened port is closed, not
    left behind holding the path (and its lock) for whoever opens it next."""
    closed = []

    class Port:
        in_waiting = 0

        def write(self, data: bytes) -> int:
            return len(data)

        def read(self, n: int) -> bytes:
            time.sleep(0.01)
            return b""

        def close(self) -> None:
            closed.append(self)

    link = Link(LinkConfig(port="fake"), serial_factory=lambda cfg: Port())
    link._closed = True  # what close() sets first
    with pytest.raises(LinkError, match="closed"):
        link._open_port()
    assert len(closed) == 1 and link._ser is None


def test_a_host_that_asked_nothing_is_not_told_the_firmware_is_silent(sim, monkeypatch):
    """Silence is a heartbeat left unanswered, not time since the last frame: a host held
    back by its busy machine (its keeper sent no heartbeat, or the answer waits unread in
    the port) is not a silent motor controller. A keeper that died counts all quiet."""
    cfg = LinkConfig(port=sim.port, timeout_s=0.3, heartbeat_hz=0.001)  # one heartbeat
    with Link(cfg) as link:
        assert _wait(lambda: link._unanswered_since is None, 5.0)  # the first one answered
        time.sleep(0.5)  # quiet, as nothing was asked
        assert link.state == "up"
        link.check()

        link._unanswered_since = time.monotonic() - 1.0  # asked, and no answer for 1 s
        assert link.state == "timeout"
        with pytest.raises(LinkTimeout, match="heartbeats unanswered"):
            link.check()

        monkeypatch.setattr(Link, "_input_waiting", lambda self: True)  # answered, unread
        assert link.state == "up"
        monkeypatch.undo()

        link._unanswered_since = None
        link._closed = True  # the keeper ends; the quiet since the last frame counts
        for t in link._threads:
            t.join(timeout=5)
        link._closed = False  # open again for the check (and for close() at the end)
        assert link.state == "timeout"


def test_disarm_is_sent_after_a_quiet_moment(sim):
    """The firmware was quiet for longer than the silence limit (a stalled machine) when
    the drive ended: the DISARM still goes out, and the firmware's ACK ends the quiet."""
    # one heartbeat at the start only: nothing arrives unasked, the quiet lasts
    cfg = LinkConfig(port=sim.port, timeout_s=SIM_SILENCE_S, heartbeat_hz=0.001)
    with Link(cfg) as link:
        link.arm(PulseCalibration(), timeout_ms=2000)  # its ACK follows that telemetry
        assert sim.controller.state == P.STATE_ARMED
        link._unanswered_since = time.monotonic() - 2 * SIM_SILENCE_S  # quiet for too long
        assert link.state == "timeout"
        link.disarm()
        assert sim.controller.state == P.STATE_DISARMED
        assert link.state == "up"
