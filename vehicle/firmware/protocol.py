"""The wire protocol between the car computer and the motor controller: the one module
both sides import (the firmware on the RP2040 under MicroPython, the host under CPython).

Written in the Python subset both interpreters run: no typing, dataclasses, enum or f-strings
with format specs; buffers allocated once; `const()` for constants.

Frame on the wire: COBS(body) followed by one 0x00 delimiter. The body is

    msg_id (u8) | seq (u8) | payload (0-32 bytes) | crc16 (u16, big-endian)

with CRC-16/CCITT-FALSE (poly 0x1021, init 0xFFFF, no reflection) over msg_id, seq and
payload. The CRC goes high byte first so that body + CRC form one codeword of this
non-reflected CRC: every error burst of up to 16 bits is caught, including one that
straddles the payload and the CRC (little-endian storage would break that). COBS makes 0x00 appear only as the delimiter, so a receiver resynchronises on
the next 0x00 after any corruption, and every corrupted or truncated frame fails the
CRC or the length check and is counted as bad, never acted on. The host also sends a 0x00
before each frame, so the first frame after noise starts clean (empty frames are ignored).
Payload integers are little-endian. Each message has one fixed payload length; any other
length is a bad frame.

Messages (H = host -> controller, C = controller -> host):
- HELLO      H  (no payload): asks for VERSION.
- VERSION    C  protocol version u8, firmware major/minor/patch u8, boot flags u8,
                uptime ms u32.
- ARM        H  steering min/mid/max us, throttle min/mid/max us (6 x u16), failsafe
                timeout ms u16, flags u8 (FLAG_CENTER_ON_FAILSAFE). Answered by ACK.
- DISARM     H  (no payload): throttle neutral, steering centred. Answered by ACK.
- COMMAND    H  steering us u16, throttle us u16 (applied only while armed, clamped to
                the limits given at ARM).
- HEARTBEAT  H  (no payload): answered by TELEMETRY.
- TELEMETRY  C  see TELEMETRY_FIELDS.
- ACK        C  acknowledged msg id u8, its seq u8, status u8 (STATUS_*).
"""

try:
    from micropython import const
except ImportError:  # CPython

    def const(x):  # type: ignore[no-redef,misc]
        return x


import struct

PROTOCOL_VERSION = const(1)
MAX_PAYLOAD = const(32)
MAX_FRAME = const(36)  # msg_id + seq + payload + crc
MAX_ENCODED = const(38)  # COBS adds one byte per 254, plus the delimiter

MSG_HELLO = const(0x01)
MSG_ARM = const(0x02)
MSG_DISARM = const(0x03)
MSG_COMMAND = const(0x04)
MSG_HEARTBEAT = const(0x05)
MSG_VERSION = const(0x81)
MSG_TELEMETRY = const(0x82)
MSG_ACK = const(0x83)

STATUS_OK = const(0)
STATUS_BAD_LIMITS = const(1)  # ARM refused: min < mid < max violated or out of range
STATUS_BAD_TIMEOUT = const(2)  # ARM refused: failsafe timeout out of range

FLAG_CENTER_ON_FAILSAFE = const(1)  # ARM flag: centre steering on failsafe (else hold)

STATE_DISARMED = const(0)
STATE_ARMED = const(1)
STATE_FAILSAFE = const(2)

# fault flags in TELEMETRY (sticky until the next ARM, except LOW_BATTERY)
FAULT_FAILSAFE = const(0x0001)  # no valid command within the timeout while armed
FAULT_CLAMPED = const(0x0002)  # a command was outside the armed limits and was clamped
FAULT_CMD_DISARMED = const(0x0004)  # a command arrived while not armed (ignored)
FAULT_LOOP_ERROR = const(0x0008)  # the main loop caught an exception
FAULT_WATCHDOG_RESET = const(0x0010)  # the last reset was the hardware watchdog
FAULT_LOW_BATTERY = const(0x0020)  # battery below the low threshold
FAULT_RX_OVERFLOW = const(0x0040)  # a frame overran the receive buffer (sticky until ARM)

PULSE_MIN_US = const(500)
PULSE_MAX_US = const(2500)
TIMEOUT_MIN_MS = const(20)
TIMEOUT_MAX_MS = const(2000)
DEFAULT_TIMEOUT_MS = const(100)

FMT_VERSION = "<BBBBBI"
FMT_ARM = "<HHHHHHHB"
FMT_COMMAND = "<HH"
FMT_ACK = "<BBB"
FMT_TELEMETRY = "<BHHIIHHHHBIH"
TELEMETRY_FIELDS = (
    "state",  # STATE_*
    "faults",  # FAULT_* bits
    "battery_mv",  # battery voltage, millivolts
    "frames_ok",  # valid frames received since boot
    "frames_bad",  # corrupt / truncated / unknown frames received since boot
    "since_cmd_ms",  # ms since the last valid COMMAND (65535 = never / saturated)
    "steer_us",  # steering pulse width being output
    "throttle_us",  # throttle pulse width being output
    "loop_errors",  # exceptions the main loop caught
    "last_cmd_seq",  # seq of the last applied COMMAND
    "uptime_ms",  # ms since boot
    "failsafes",  # failsafe trips since boot
)
VERSION_FIELDS = ("protocol", "major", "minor", "patch", "boot_flags", "uptime_ms")

# payload length of each message id; anything else is not a message
LENGTHS = {
    MSG_HELLO: 0,
    MSG_ARM: 15,
    MSG_DISARM: 0,
    MSG_COMMAND: 4,
    MSG_HEARTBEAT: 0,
    MSG_VERSION: 9,
    MSG_TELEMETRY: 28,
    MSG_ACK: 3,
}
TO_CONTROLLER = {MSG_HELLO: 0, MSG_ARM: 15, MSG_DISARM: 0, MSG_COMMAND: 4, MSG_HEARTBEAT: 0}
TO_HOST = {MSG_VERSION: 9, MSG_TELEMETRY: 28, MSG_ACK: 3}


def _make_table():
    table = []
    for i in range(256):
        crc = i << 8
        for _ in range(8):
            if crc & 0x8000:
                crc = ((crc << 1) ^ 0x1021) & 0xFFFF
            else:
                crc = (crc << 1) & 0xFFFF
        table.append(crc)
    return table


_CRC_TABLE = _make_table()


def crc16(buf, start, end):
    """CRC-16/CCITT-FALSE of buf[start:end] ("123456789" -> 0x29B1)."""
    crc = 0xFFFF
    table = _CRC_TABLE
    for i in range(start, end):
        crc = ((crc << 8) & 0xFF00) ^ table[((crc >> 8) ^ buf[i]) & 0xFF]
    return crc


def cobs_encode_into(src, n, out):
    """COBS-encode src[0:n] into out, append the 0x00 delimiter; returns bytes written."""
    code_at = 0
    o = 1
    code = 1
    for i in range(n):
        b = src[i]
        if b == 0:
            out[code_at] = code
            code_at = o
            o += 1
            code = 1
        else:
            out[o] = b
            o += 1
            code += 1
            if code == 0xFF and i + 1 < n:
                out[code_at] = code
                code_at = o
                o += 1
                code = 1
    out[code_at] = code
    out[o] = 0
    return o + 1


def cobs_decode_into(src, n, out):
    """COBS-decode src[0:n] (without the delimiter) into out; returns the decoded length,
    or -1 if src is not valid COBS or does not fit in out."""
    i = 0
    o = 0
    cap = len(out)
    while i < n:
        code = src[i]
        if code == 0:
            return -1
        i += 1
        end = i + code - 1
        if end > n:
            return -1
        while i < end:
            b = src[i]
            if b == 0 or o >= cap:
                return -1
            out[o] = b
            o += 1
            i += 1
        if code != 0xFF and i < n:
            if o >= cap:
                return -1
            out[o] = 0
            o += 1
    return o


class Encoder:
    """Builds frames into a buffer allocated once (`out`, MAX_ENCODED bytes)."""

    def __init__(self):
        self.body = bytearray(MAX_FRAME)
        self.payload = bytearray(MAX_PAYLOAD)
        self.out = bytearray(MAX_ENCODED)

    def frame(self, msg_id, seq, plen):
        """Encode msg_id, seq and self.payload[0:plen]; returns the length in self.out."""
        body = self.body
        body[0] = msg_id
        body[1] = seq & 0xFF
        p = self.payload
        for i in range(plen):
            body[2 + i] = p[i]
        crc = crc16(body, 0, 2 + plen)
        body[2 + plen] = crc >> 8
        body[3 + plen] = crc & 0xFF
        return cobs_encode_into(body, 4 + plen, self.out)

    def command(self, seq, steer_us, throttle_us):
        struct.pack_into(FMT_COMMAND, self.payload, 0, steer_us, throttle_us)
        return self.frame(MSG_COMMAND, seq, 4)

    def arm(self, seq, s_min, s_mid, s_max, t_min, t_mid, t_max, timeout_ms, flags):
        struct.pack_into(
            FMT_ARM, self.payload, 0, s_min, s_mid, s_max, t_min, t_mid, t_max, timeout_ms, flags
        )
        return self.frame(MSG_ARM, seq, 15)

    def ack(self, seq, acked_id, acked_seq, status):
        struct.pack_into(FMT_ACK, self.payload, 0, acked_id, acked_seq, status)
        return self.frame(MSG_ACK, seq, 3)

    def version(self, seq, major, minor, patch, boot_flags, uptime_ms):
        struct.pack_into(
            FMT_VERSION,
            self.payload,
            0,
            PROTOCOL_VERSION,
            major,
            minor,
            patch,
            boot_flags,
            uptime_ms & 0xFFFFFFFF,
        )
        return self.frame(MSG_VERSION, seq, 9)

    def telemetry(self, seq, values):
        """values: a sequence in TELEMETRY_FIELDS order (saturated to field widths)."""
        struct.pack_into(
            FMT_TELEMETRY,
            self.payload,
            0,
            values[0] & 0xFF,
            values[1] & 0xFFFF,
            min(values[2], 0xFFFF),
            values[3] & 0xFFFFFFFF,
            values[4] & 0xFFFFFFFF,
            min(values[5], 0xFFFF),
            values[6] & 0xFFFF,
            values[7] & 0xFFFF,
            min(values[8], 0xFFFF),
            values[9] & 0xFF,
            values[10] & 0xFFFFFFFF,
            min(values[11], 0xFFFF),
        )
        return self.frame(MSG_TELEMETRY, seq, 28)


class Parser:
    """Byte-at-a-time receiver: COBS de-framing, CRC and length checks, counters.

    `feed(b)` returns the msg id of a complete valid frame (its seq in `seq`, its payload
    in `frame[2:2 + length]`), else 0. `good` and `bad` count frames; empty frames
    (repeated delimiters) count as neither.
    """

    def __init__(self, accept):
        self.accept = accept  # msg id -> payload length (TO_CONTROLLER or TO_HOST)
        self.raw = bytearray(MAX_ENCODED)
        self.frame = bytearray(MAX_FRAME)
        self.n = 0
        self.overflow = False
        self.good = 0
        self.bad = 0
        self.overflows = 0  # frames longer than MAX_ENCODED (bytes were lost or merged)
        self.msg_id = 0
        self.seq = 0
        self.length = 0

    def reset(self):
        """Drop a partial frame (e.g. after a reconnect)."""
        self.n = 0
        self.overflow = False

    def feed(self, b):
        if b:
            n = self.n
            if n < MAX_ENCODED:
                self.raw[n] = b
                self.n = n + 1
            else:
                self.overflow = True
            return 0
        n = self.n
        self.n = 0
        if self.overflow:
            self.overflow = False
            self.bad += 1
            self.overflows += 1
            return 0
        if n == 0:
            return 0
        frame = self.frame
        m = cobs_decode_into(self.raw, n, frame)
        if m < 4:
            self.bad += 1
            return 0
        crc = (frame[m - 2] << 8) | frame[m - 1]
        if crc != crc16(frame, 0, m - 2):
            self.bad += 1
            return 0
        msg_id = frame[0]
        expected = self.accept.get(msg_id, -1)
        if expected != m - 4:
            self.bad += 1
            return 0
        self.good += 1
        self.msg_id = msg_id
        self.seq = frame[1]
        self.length = m - 4
        return msg_id

    def feed_into(self, buf, n, handler):
        """Feed buf[0:n]; call handler(self, msg_id) for every valid frame."""
        for i in range(n):
            msg_id = self.feed(buf[i])
            if msg_id:
                handler(self, msg_id)


def unpack_command(frame):
    """(steer_us, throttle_us) from a parsed COMMAND frame buffer."""
    return struct.unpack_from(FMT_COMMAND, frame, 2)


def unpack_arm(frame):
    """(s_min, s_mid, s_max, t_min, t_mid, t_max, timeout_ms, flags)."""
    return struct.unpack_from(FMT_ARM, frame, 2)


def unpack_ack(frame):
    """(acked_id, acked_seq, status)."""
    return struct.unpack_from(FMT_ACK, frame, 2)


def unpack_version(frame):
    """Values in VERSION_FIELDS order."""
    return struct.unpack_from(FMT_VERSION, frame, 2)


def unpack_telemetry(frame):
    """Values in TELEMETRY_FIELDS order."""
    return struct.unpack_from(FMT_TELEMETRY, frame, 2)


# -- whole-frame helpers (allocate; for the host and tests, not the firmware loop) -------


def encode(msg_id, seq, payload=b""):
    """One complete wire frame (COBS + delimiter) as bytes."""
    if len(payload) > MAX_PAYLOAD:
        raise ValueError("payload longer than MAX_PAYLOAD")
    enc = Encoder()
    for i in range(len(payload)):
        enc.payload[i] = payload[i]
    n = enc.frame(msg_id, seq, len(payload))
    return bytes(enc.out[:n])


def decode(data, accept=None):
    """One complete wire frame (with or without the trailing 0x00) -> (msg_id, seq,
    payload bytes); raises ValueError for anything a Parser would count as bad."""
    if accept is None:
        accept = LENGTHS
    p = Parser(accept)
    if len(data) and data[len(data) - 1] == 0:
        data = data[: len(data) - 1]
    for b in data:
        if b == 0:
            raise ValueError("0x00 inside a frame")
        p.feed(b)
    if not p.feed(0):
        raise ValueError("bad frame")
    return p.msg_id, p.seq, bytes(p.frame[2 : 2 + p.length])
