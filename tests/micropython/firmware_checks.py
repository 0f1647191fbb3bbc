"""Firmware logic checks written in the Python subset MicroPython runs: executed under the
real MicroPython interpreter (tests/micropython/run.mjs) and under CPython, with the
stand-in `machine` module beside this file. Prints one line per check and `ALL OK n`.

Golden frames come from golden_frames.json (found in /lib under MicroPython, next to this
file under CPython).
"""

import json

try:
    from vehicle.firmware import protocol  # CPython from the repo root
    from vehicle.firmware.actuators import BatteryMonitor, PulseOutput
    from vehicle.firmware.controller import Controller, ticks_diff
except ImportError:
    import protocol  # MicroPython: flat modules in /lib
    from actuators import BatteryMonitor, PulseOutput
    from controller import Controller, ticks_diff

from machine import Pin

P = protocol
_count = [0]


def check(name, cond):
    if not cond:
        raise AssertionError("FAILED: " + name)
    _count[0] += 1


def golden_path():
    for p in ("/lib/golden_frames.json", "tests/micropython/golden_frames.json"):
        try:
            open(p).close()
            return p
        except OSError:
            pass
    raise OSError("golden_frames.json not found")


def hexbytes(s):
    return bytes([int(s[i : i + 2], 16) for i in range(0, len(s), 2)])


def check_golden():
    with open(golden_path()) as f:
        data = json.load(f)
    check("crc check value", P.crc16(b"123456789", 0, 9) == int(data["crc_check"], 16))
    for v in data["cobs"]:
        raw = hexbytes(v["raw"])
        enc = hexbytes(v["encoded"])
        out = bytearray(len(raw) + len(raw) // 254 + 2)
        n = P.cobs_encode_into(raw, len(raw), out)
        check("cobs encode " + v["raw"][:16], bytes(out[:n]) == enc)
        back = bytearray(len(raw) + 1)
        m = P.cobs_decode_into(enc, len(enc) - 1, back)
        check("cobs decode " + v["raw"][:16], m == len(raw) and bytes(back[:m]) == raw)
    enc = P.Encoder()
    for v in data["frames"]:
        kind = v["kind"]
        seq = v["seq"]
        fields = v["fields"]
        if kind == "command":
            n = enc.command(seq, fields[0], fields[1])
        elif kind == "arm":
            n = enc.arm(seq, *fields)
        elif kind == "ack":
            n = enc.ack(seq, fields[0], fields[1], fields[2])
        elif kind == "version":
            n = enc.version(seq, fields[1], fields[2], fields[3], fields[4], fields[5])
        elif kind == "telemetry":
            n = enc.telemetry(seq, fields)
        else:
            n = enc.frame(v["msg_id"], seq, 0)
        frame = hexbytes(v["frame"])
        check("encode " + v["name"], bytes(enc.out[:n]) == frame)
        parser = P.Parser(P.LENGTHS)
        got = 0
        for b in frame:
            got = parser.feed(b) or got
        check("decode id " + v["name"], got == v["msg_id"] and parser.seq == seq)
        if kind == "command":
            check("fields " + v["name"], list(P.unpack_command(parser.frame)) == fields)
        elif kind == "arm":
            check("fields " + v["name"], list(P.unpack_arm(parser.frame)) == fields)
        elif kind == "ack":
            check("fields " + v["name"], list(P.unpack_ack(parser.frame)) == fields)
        elif kind == "version":
            check("fields " + v["name"], list(P.unpack_version(parser.frame)) == fields)
        elif kind == "telemetry":
            check("fields " + v["name"], list(P.unpack_telemetry(parser.frame)) == fields)
    for v in data["bad"]:
        parser = P.Parser(P.LENGTHS)
        got = 0
        for b in hexbytes(v["bytes"]):
            got = parser.feed(b) or got
        check("reject " + v["name"], got == 0 and parser.bad == v["bad"] and parser.good == 0)


class Port:
    """A serial port stand-in: bytes queued by the test, frames written by the firmware."""

    def __init__(self):
        self.inbox = bytearray()
        self.outbox = bytearray()

    def readinto(self, buf):
        n = min(len(buf), len(self.inbox))
        if n == 0:
            return None
        buf[:n] = self.inbox[:n]
        self.inbox = self.inbox[n:]
        return n

    def write(self, data):
        self.outbox.extend(bytes(data))
        return len(data)

    def replies(self):
        parser = P.Parser(P.TO_HOST)
        out = []
        for b in self.outbox:
            m = parser.feed(b)
            if m:
                out.append((m, bytes(parser.frame[: 2 + parser.length])))
        self.outbox = bytearray()
        return out


def make(now=0):
    sp = Pin(14)
    tp = Pin(15)
    ap = Pin(26)
    ap.adc_u16 = 20000  # 20000/65535 * 3.3 V * 3 = 3.02 V... -> ~3021 mV at the battery
    port = Port()
    ctrl = Controller(
        port,
        PulseOutput(sp, 1450),
        PulseOutput(tp, 1446),
        BatteryMonitor(ap, 20000, 10000),
        1450,
        1446,
        6400,
        0,
        now,
    )
    return ctrl, port, sp, tp, ap


ENC = P.Encoder()


def send(port, n):
    port.inbox.extend(ENC.out[:n])


def arm(ctrl, port, now, timeout=100, flags=0, limits=(1200, 1450, 1700, 1311, 1446, 1604)):
    send(
        port,
        ENC.arm(
            1, limits[0], limits[1], limits[2], limits[3], limits[4], limits[5], timeout, flags
        ),
    )
    ctrl.poll(now)
    return port.replies()


def check_controller():
    ctrl, port, sp, tp, ap = make()
    check("boot neutral", sp.duty_ns == 1450000 and tp.duty_ns == 1446000)
    check("boot disarmed", ctrl.state == P.STATE_DISARMED)
    # commands before arming are ignored
    send(port, ENC.command(5, 1600, 1350))
    ctrl.poll(1)
    check("command while disarmed ignored", tp.duty_ns == 1446000 and sp.duty_ns == 1450000)
    check("flag command while disarmed", ctrl.faults & P.FAULT_CMD_DISARMED)
    # hello -> version
    send(port, ENC.frame(P.MSG_HELLO, 2, 0))
    ctrl.poll(2)
    r = port.replies()
    check("hello answered", len(r) == 1 and r[0][0] == P.MSG_VERSION)
    # arm -> ack ok
    r = arm(ctrl, port, 10)
    check("arm acked", len(r) == 1 and r[0][0] == P.MSG_ACK)
    check("arm ok", list(P.unpack_ack(r[0][1]))[2] == P.STATUS_OK)
    check("armed", ctrl.state == P.STATE_ARMED)
    check("arm clears sticky faults", ctrl.faults & P.FAULT_CMD_DISARMED == 0)
    # command applied
    send(port, ENC.command(7, 1600, 1350))
    ctrl.poll(20)
    check("command applied", sp.duty_ns == 1600000 and tp.duty_ns == 1350000)
    check("seq recorded", ctrl.last_cmd_seq == 7)
    # clamping to the armed limits
    send(port, ENC.command(8, 2400, 900))
    ctrl.poll(30)
    check("steer clamped to max", sp.duty_ns == 1700000)
    check("throttle clamped to min", tp.duty_ns == 1311000)
    check("clamp flagged", ctrl.faults & P.FAULT_CLAMPED)
    send(port, ENC.command(9, 1000, 1700))
    ctrl.poll(40)
    check("steer clamped to min", sp.duty_ns == 1200000)
    check("throttle clamped to max", tp.duty_ns == 1604000)
    for v in tp.history + sp.history:
        check("every pulse within limits", 1200 <= v <= 1700)
    # failsafe: last command at 40 ms, timeout 100 ms
    send(port, ENC.command(10, 1500, 1400))
    ctrl.poll(40)
    ctrl.poll(137)
    check("no failsafe at 97 ms", ctrl.state == P.STATE_ARMED and tp.duty_ns == 1400000)
    ctrl.poll(138)
    check("failsafe at 98 ms (2 ms margin)", ctrl.state == P.STATE_FAILSAFE)
    check("failsafe throttle neutral", tp.duty_ns == 1446000)
    check("failsafe steering holds", sp.duty_ns == 1500000)
    check("failsafe counted", ctrl.failsafes == 1 and ctrl.faults & P.FAULT_FAILSAFE)
    # after a failsafe, commands stay ignored until ARM
    send(port, ENC.command(11, 1500, 1350))
    ctrl.poll(150)
    check("no command after failsafe", tp.duty_ns == 1446000)
    arm(ctrl, port, 200, timeout=50, flags=P.FLAG_CENTER_ON_FAILSAFE)
    send(port, ENC.command(12, 1650, 1380))
    ctrl.poll(210)
    check("re-armed command applied", tp.duty_ns == 1380000)
    ctrl.poll(257)
    check("custom timeout not yet", ctrl.state == P.STATE_ARMED)
    ctrl.poll(258)
    check("custom timeout 50 ms", ctrl.state == P.STATE_FAILSAFE and tp.duty_ns == 1446000)
    check("centre on failsafe", sp.duty_ns == 1450000)
    # arm with no command afterwards also fails safe
    arm(ctrl, port, 300)
    ctrl.poll(400)
    check("arm then silence fails safe", ctrl.state == P.STATE_FAILSAFE)
    # disarm
    arm(ctrl, port, 500)
    send(port, ENC.command(13, 1650, 1380))
    ctrl.poll(510)
    send(port, ENC.frame(P.MSG_DISARM, 14, 0))
    ctrl.poll(520)
    r = port.replies()
    check("disarm acked", r and r[-1][0] == P.MSG_ACK)
    check("disarm neutral", ctrl.state == P.STATE_DISARMED and tp.duty_ns == 1446000)
    check("disarm centres", sp.duty_ns == 1450000)
    # refused arms
    r = arm(ctrl, port, 600, limits=(1500, 1450, 1700, 1311, 1446, 1604))
    check("bad limits refused", list(P.unpack_ack(r[0][1]))[2] == P.STATUS_BAD_LIMITS)
    r = arm(ctrl, port, 610, limits=(1200, 1450, 3000, 1311, 1446, 1604))
    check("out of range refused", list(P.unpack_ack(r[0][1]))[2] == P.STATUS_BAD_LIMITS)
    r = arm(ctrl, port, 620, timeout=5)
    check("bad timeout refused", list(P.unpack_ack(r[0][1]))[2] == P.STATUS_BAD_TIMEOUT)
    check("still disarmed", ctrl.state == P.STATE_DISARMED)
    # heartbeat -> telemetry with counters and battery
    for _ in range(10):
        ctrl.poll(700)
    good = ctrl.parser.good
    port.inbox.extend(b"\x05\x11\x22\x33\x00")  # a corrupt frame
    send(port, ENC.frame(P.MSG_HEARTBEAT, 15, 0))
    ctrl.poll(720)
    r = port.replies()
    check("heartbeat answered", len(r) == 1 and r[0][0] == P.MSG_TELEMETRY)
    t = P.unpack_telemetry(r[0][1])
    tel = {}
    for i in range(len(P.TELEMETRY_FIELDS)):
        tel[P.TELEMETRY_FIELDS[i]] = t[i]
    check("telemetry frames_ok", tel["frames_ok"] == good + 1)
    check("telemetry frames_bad", tel["frames_bad"] == 1)
    check("telemetry battery", abs(tel["battery_mv"] - 3021) <= 2)
    check("telemetry low battery flag", tel["faults"] & P.FAULT_LOW_BATTERY)
    check("telemetry state", tel["state"] == P.STATE_DISARMED)
    check("telemetry pulses", tel["steer_us"] == 1450 and tel["throttle_us"] == 1446)
    check("telemetry failsafes", tel["failsafes"] == 3)
    check("telemetry uptime", tel["uptime_ms"] == 720)


def check_corruption():
    """Random corruption of a command stream: nothing corrupt is ever applied, counters
    match the frames that were damaged."""
    ctrl, port, sp, tp, ap = make()
    arm(ctrl, port, 0, timeout=2000)
    sent = {}
    stream = bytearray()
    chunks = []
    seed = 12345
    for i in range(300):
        seed = (seed * 1103515245 + 12345) & 0x7FFFFFFF
        s = 1200 + seed % 501
        t = 1311 + (seed >> 9) % 294
        sent[(s, t)] = 1
        n = ENC.command(i, s, t)
        f = bytes(ENC.out[:n])
        chunks.append(f[:-1])
        stream.extend(f)
    # corrupt one byte in every 7th frame, drop one byte in every 11th
    damaged = bytearray()
    bad = 0
    for i in range(len(chunks)):
        c = bytearray(chunks[i])
        if i % 7 == 3:
            c[len(c) // 2] ^= 0x5A
            if c[len(c) // 2] == 0:
                c[len(c) // 2] = 1
            bad += 1
        elif i % 11 == 5:
            c = c[:2] + c[3:]
            bad += 1
        damaged.extend(c)
        damaged.append(0)
    good0 = ctrl.parser.good
    port.inbox.extend(damaged)
    now = 1
    while port.inbox:
        ctrl.poll(now)
        now += 1
        check("applied pulse was sent", (sp.duty_ns // 1000, tp.duty_ns // 1000) in sent)
    check("bad frames counted", ctrl.parser.bad == bad)
    check("good frames counted", ctrl.parser.good - good0 == 300 - bad)


def check_leading_delimiter():
    """Line noise leaves an unfinished frame in the receiver: a command sent right after
    it merges into one bad frame and is lost, unless a 0x00 goes first (the host link
    sends one before every frame); the empty frame it makes is ignored."""
    for lead, applied in ((b"", False), (b"\x00", True)):
        ctrl, port, sp, tp, ap = make()
        arm(ctrl, port, 0, timeout=2000)
        bad0, good0 = ctrl.parser.bad, ctrl.parser.good
        port.inbox.extend(b"\x13\x77\xa5\x03")  # noise: no delimiter
        port.inbox.extend(lead)
        send(port, ENC.command(2, 1575, 1380))
        ctrl.poll(1)
        name = "leading 0x00" if lead else "no leading 0x00"
        got = (sp.duty_ns // 1000, tp.duty_ns // 1000) == (1575, 1380)
        check(name + ": first command after noise applied", got == applied)
        check(name + ": noise is one bad frame", ctrl.parser.bad - bad0 == 1)
        check(name + ": good frames", ctrl.parser.good - good0 == (1 if applied else 0))


def check_parser_robustness():
    parser = P.Parser(P.TO_CONTROLLER)
    # an over-long run without delimiter is one bad frame, then the parser resyncs
    for _ in range(500):
        parser.feed(0x41)
    parser.feed(0)
    check("overflow counted once", parser.bad == 1 and parser.overflows == 1)
    n = ENC.command(1, 1500, 1500)
    got = 0
    for b in ENC.out[:n]:
        got = parser.feed(b) or got
    check("resync after overflow", got == P.MSG_COMMAND)
    # a frame of the wrong length for its id is bad
    raw = P.encode(P.MSG_COMMAND, 1, b"\x01\x02\x03")
    for b in raw:
        parser.feed(b)
    check("wrong length rejected", parser.bad == 2)
    # a controller-bound parser rejects host-bound messages
    raw = P.encode(P.MSG_TELEMETRY, 1, bytes(28))
    for b in raw:
        parser.feed(b)
    check("wrong direction rejected", parser.bad == 3)
    check("ticks wrap", ticks_diff(5, 0x3FFFFFFF - 4) == 10)


def check_loop_never_raises():
    ctrl, port, sp, tp, ap = make()

    def broken(buf):
        raise OSError(5)

    port.readinto = broken
    for t in range(5):
        ctrl.poll(t)
    check("loop errors counted", ctrl.loop_errors == 5)
    check("loop error flagged", ctrl.faults & P.FAULT_LOOP_ERROR)
    check("still neutral after errors", tp.duty_ns == 1446000)
    ap.adc_u16 = None  # the ADC read now fails (None * int)
    ctrl.poll(100)
    check("battery error counted", ctrl.loop_errors == 7)  # port + ADC
    ctrl, port, sp, tp, ap = make()
    port.inbox.extend(b"\x41" * 100 + b"\x00")
    for t in range(3):
        ctrl.poll(t)
    check("overrun flagged", ctrl.faults & P.FAULT_RX_OVERFLOW and ctrl.parser.bad == 1)
    arm(ctrl, port, 10)
    check("arm clears overrun", not ctrl.faults & P.FAULT_RX_OVERFLOW)


check_golden()
check_loop_never_raises()
check_controller()
check_corruption()
check_leading_delimiter()
check_parser_robustness()
print("ALL OK", _count[0])
