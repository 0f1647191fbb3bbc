"""The wire protocol and the firmware logic under CPython: the shared checks (also run
under MicroPython), property tests with hypothesis, and the million-frame parser fuzz."""

from __future__ import annotations

import random
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from vehicle.firmware import protocol as P
from vehicle.firmware.controller import Controller

ROOT = Path(__file__).resolve().parents[2]
MP_DIR = ROOT / "tests" / "micropython"


def test_shared_firmware_checks_under_cpython():
    proc = subprocess.run(
        [sys.executable, str(MP_DIR / "firmware_checks.py")],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip().splitlines()[-1].startswith("ALL OK")


@given(
    msg_id=st.integers(1, 255),
    seq=st.integers(0, 255),
    payload=st.binary(max_size=P.MAX_PAYLOAD),
)
@settings(max_examples=300, deadline=None)
def test_roundtrip_any_frame(msg_id, seq, payload):
    frame = P.encode(msg_id, seq, payload)
    assert frame[-1] == 0 and 0 not in frame[:-1]
    assert len(frame) <= P.MAX_ENCODED
    assert P.decode(frame, {msg_id: len(payload)}) == (msg_id, seq, payload)


@given(st.binary(max_size=400))
@settings(max_examples=500, deadline=None)
def test_parser_never_raises_and_counts_every_chunk(data):
    parser = P.Parser(P.LENGTHS)
    for b in data + b"\x00":
        parser.feed(b)
    chunks = [c for c in (data + b"\x00").split(b"\x00")[:-1] if c]
    assert parser.good + parser.bad == len(chunks)


def _valid_frames(rng: random.Random, n: int) -> list[bytes]:
    enc = P.Encoder()
    out = []
    for i in range(n):
        k = rng.randrange(5)
        if k == 0:
            m = enc.command(i, rng.randrange(65536), rng.randrange(65536))
        elif k == 1:
            m = enc.arm(i, *(rng.randrange(65536) for _ in range(7)), rng.randrange(256))
        elif k == 2:
            m = enc.frame(P.MSG_HEARTBEAT, i, 0)
        elif k == 3:
            m = enc.frame(P.MSG_DISARM, i, 0)
        else:
            m = enc.frame(P.MSG_HELLO, i, 0)
        out.append(bytes(enc.out[: m - 1]))  # without the delimiter
    return out


def _mutate(rng: random.Random, f: bytes) -> bytes:
    """A corruption CRC-16 plus the length check is guaranteed to catch: one flipped bit,
    one substituted byte, a burst of two bytes, one byte dropped or inserted, or a
    truncation. Results containing 0x00 (which would split the frame) or equal to the
    original are drawn again."""
    while True:
        b = bytearray(f)
        k = rng.randrange(6)
        i = rng.randrange(len(b))
        if k == 0:
            b[i] ^= 1 << rng.randrange(8)
        elif k == 1:
            b[i] ^= rng.randrange(1, 256)
        elif k == 2 and i + 1 < len(b):
            b[i] ^= rng.randrange(1, 256)
            b[i + 1] ^= rng.randrange(1, 256)
        elif k == 3:
            del b[i]
        elif k == 4:
            b.insert(i, rng.randrange(1, 256))
        else:
            del b[rng.randrange(1, len(b)) :]
        out = bytes(b)
        if out and 0 not in out and out != f:
            return out


@pytest.mark.slow
def test_fuzz_a_million_frames_no_crash_no_wrong_actuation():
    """1,000,000 random and mutated frames into the firmware's parser and controller:
    nothing raises, no mutated frame is accepted, every accepted frame is one that was
    sent intact, and no pulse outside the armed limits is ever output."""
    rng = random.Random(20240607)
    valid = _valid_frames(rng, 2000)
    total = 1_000_000
    stream = bytearray()
    intact = set()
    kinds = {"intact": 0, "mutated": 0, "junk": 0}
    for _ in range(total):
        r = rng.random()
        if r < 0.2:
            f = valid[rng.randrange(len(valid))]
            intact.add(f)
            kinds["intact"] += 1
        elif r < 0.8:
            f = _mutate(rng, valid[rng.randrange(len(valid))])
            kinds["mutated"] += 1
        else:
            f = bytes(rng.randrange(1, 256) for _ in range(rng.randrange(1, 48)))
            kinds["junk"] += 1
        stream += f
        stream.append(0)

    class Out:
        def __init__(self, us):
            self.pulse_us = us
            self.bad = 0

        def write_us(self, us):
            self.pulse_us = us
            if not 1200 <= us <= 1700:
                self.bad += 1

    class Port:
        def __init__(self):
            self.data = b""
            self.pos = 0

        def readinto(self, buf):
            n = min(len(buf), len(self.data) - self.pos)
            if n <= 0:
                return None
            buf[:n] = self.data[self.pos : self.pos + n]
            self.pos += n
            return n

        def write(self, d):
            return len(d)

    class Battery:
        mv = 7400

        def update(self):
            return 7400

    steer, throttle, port = Out(1450), Out(1450), Port()
    ctrl = Controller(port, steer, throttle, Battery(), 1450, 1450, 0, 0, 0)
    arm_frame = _arm_payload()
    accepted = []
    original = ctrl._on_message

    def spy(parser, msg_id):
        accepted.append(bytes(parser.frame[: parser.length + 4]))
        original(parser, msg_id)
        if ctrl.state != P.STATE_ARMED:  # keep it armed so every command is applied
            ctrl._arm(arm_frame, 0)

    ctrl._arm(arm_frame, 0)
    ctrl._handler = spy
    port.data = bytes(stream)
    now = 0
    while port.pos < len(port.data):
        ctrl.poll(now)
        now += 1
    intact_bodies = set()
    for f in intact:
        dec = bytearray(P.MAX_FRAME)
        m = P.cobs_decode_into(f, len(f), dec)
        intact_bodies.add(bytes(dec[:m]))
    wrong = [a for a in accepted if a not in intact_bodies]
    assert ctrl.loop_errors == 0
    assert not wrong, f"{len(wrong)} corrupted frames accepted, e.g. {wrong[0].hex()}"
    assert steer.bad == 0 and throttle.bad == 0
    assert ctrl.parser.good == kinds["intact"]
    assert ctrl.parser.good + ctrl.parser.bad == total


def _arm_payload() -> bytearray:
    """A parsed-frame buffer holding ARM 1200/1450/1700 x2, 2000 ms."""
    import struct

    buf = bytearray(P.MAX_FRAME)
    struct.pack_into(P.FMT_ARM, buf, 2, 1200, 1450, 1700, 1200, 1450, 1700, 2000, 0)
    return buf
