"""The serial line between the host and the simulated board: a pseudo-terminal whose
master side is the firmware's UART, with seeded byte-level faults (corruption, drops) on
either direction and a cable that can be pulled.

    port = PtyPort(LineFaults(corrupt_prob=0.005, seed=3))
    port.path                  # what the host opens, like /dev/ttyACM0 on the car
    port.close()               # pull the cable: both ends close, the host's reads fail

Laptop-only (hardware-in-the-loop); standard library only.
"""

from __future__ import annotations

import errno
import fcntl
import os
import random
import sys
import termios
import time
import tty
from dataclasses import dataclass, field


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
