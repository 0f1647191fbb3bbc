"""The firmware's wire protocol (golden frames) and logic (parser, failsafe, clamping,
corruption) under a real MicroPython interpreter: the WebAssembly build from npm
(`@micropython/micropython-webassembly-pyscript`) run by Node.js, with a stand-in
`machine` module. The same checks run under CPython in tests/vehicle/test_firmware.py."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
FIRMWARE = ROOT / "vehicle" / "firmware"
PACKAGE = HERE / "node_modules" / "@micropython" / "micropython-webassembly-pyscript"


@pytest.fixture(scope="module")
def node() -> str:
    node = shutil.which("node")
    if node is None:
        pytest.skip("Node.js is not installed (tools/install_test_deps.sh installs it)")
    if not PACKAGE.exists():
        npm = shutil.which("npm")
        if npm is None:
            pytest.skip("npm is not installed (tools/install_test_deps.sh installs it)")
        subprocess.run(
            [npm, "install", "--no-audit", "--no-fund", "--silent"],
            cwd=HERE,
            check=True,
            timeout=300,
        )
    return node


def _run(node: str, script: Path, *files: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [node, "run.mjs", str(script), *map(str, files)],
        cwd=HERE,
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_interpreter_is_real_micropython(node: str, tmp_path: Path) -> None:
    script = tmp_path / "which.py"
    script.write_text("import sys\nprint(sys.implementation.name)\nfrom micropython import const\n")
    proc = _run(node, script)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "micropython"


def test_firmware_checks_under_micropython(node: str) -> None:
    proc = _run(
        node,
        HERE / "firmware_checks.py",
        HERE / "machine.py",
        HERE / "golden_frames.json",
        FIRMWARE / "protocol.py",
        FIRMWARE / "controller.py",
        FIRMWARE / "actuators.py",
    )
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    last = proc.stdout.strip().splitlines()[-1]
    assert last.startswith("ALL OK"), proc.stdout
    assert int(last.split()[-1]) >= 150


def test_a_failing_check_fails_under_micropython(node: str, tmp_path: Path) -> None:
    """The runner reports a Python exception as a failure (so the test above can fail)."""
    script = tmp_path / "bad.py"
    script.write_text("import protocol\nassert protocol.crc16(b'123456789', 0, 9) == 0\n")
    proc = _run(node, script, FIRMWARE / "protocol.py")
    assert proc.returncode == 1
    assert "AssertionError" in proc.stderr


def test_firmware_main_imports_under_micropython(node: str, tmp_path: Path) -> None:
    """main.py and board-independent modules import on MicroPython (flat layout, as on the
    board) and run a few loop iterations on a stand-in board."""
    script = tmp_path / "boot.py"
    script.write_text(
        "import main\n"
        "from machine import Pin\n"
        "from actuators import PulseOutput, BatteryMonitor\n"
        "class Port:\n"
        "    def readinto(self, b):\n"
        "        return None\n"
        "    def write(self, d):\n"
        "        return len(d)\n"
        "class WDT:\n"
        "    feeds = 0\n"
        "    def feed(self):\n"
        "        WDT.feeds += 1\n"
        "class Board:\n"
        "    def __init__(self):\n"
        "        self.uart = Port()\n"
        "        self.steering = PulseOutput(Pin(14), 1450)\n"
        "        self.throttle = PulseOutput(Pin(15), 1446)\n"
        "        self.battery = BatteryMonitor(Pin(26), 20000, 10000)\n"
        "        self.led = Pin('LED')\n"
        "        self.low_battery_mv = 6400\n"
        "        self.t = 0\n"
        "    def ticks_ms(self):\n"
        "        self.t += 1\n"
        "        return self.t\n"
        "    def sleep_ms(self, ms):\n"
        "        pass\n"
        "    def watchdog_reset(self):\n"
        "        return False\n"
        "    def watchdog(self):\n"
        "        return WDT()\n"
        "n = [0]\n"
        "def stop():\n"
        "    n[0] += 1\n"
        "    return n[0] > 50\n"
        "ctrl = main.run(Board(), stop)\n"
        "assert WDT.feeds == 50, WDT.feeds\n"
        "assert ctrl.state == 0 and ctrl.loop_errors == 0\n"
        "print('booted')\n"
    )
    proc = _run(
        node,
        script,
        HERE / "machine.py",
        FIRMWARE / "main.py",
        FIRMWARE / "protocol.py",
        FIRMWARE / "controller.py",
        FIRMWARE / "actuators.py",
    )
    assert proc.returncode == 0, proc.stderr
    assert "booted" in proc.stdout
