"""`racer firmware build|flash`: build and flash the MicroPython motor-controller firmware.

`racer firmware build [--out DIR]` compiles `vehicle/firmware/*.py` to `.mpy` with
mpy-cross. `racer firmware flash --port PORT` builds, copies the build to the board with
mpremote, resets it, and checks over the serial link that the firmware speaks the host's
protocol version.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from tools.errors import FirmwareError
from tools.firmware import (
    FIRMWARE_DIR,
    build,
    check_protocol,
    find_tool,
    load_build,
    mpremote_argv,
    run_mpremote,
)

DEFAULT_OUT = Path("build/firmware")


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="racer firmware", description=__doc__.splitlines()[0])
    sub = p.add_subparsers(dest="action", metavar="ACTION", required=True)
    for name, help_ in (
        ("build", "compile the firmware to .mpy"),
        ("flash", "build, copy to the board with mpremote, check the protocol version"),
    ):
        s = sub.add_parser(name, help=help_)
        s.add_argument(
            "--out", default=str(DEFAULT_OUT), help=f"build folder (default {DEFAULT_OUT})"
        )
        s.add_argument(
            "--source",
            default=str(FIRMWARE_DIR),
            help="firmware sources (default: this checkout's)",
        )
        s.add_argument("--mpy-cross", dest="mpy_cross", metavar="PATH", help="mpy-cross to use")
        s.add_argument("--json", action="store_true", help="print JSON")
        if name == "flash":
            s.add_argument(
                "--port", required=True, help="the board's serial port, e.g. /dev/ttyACM0"
            )
            s.add_argument("--mpremote", metavar="PATH", help="mpremote to use")
            s.add_argument(
                "--no-build", action="store_true", help="flash the existing build folder as is"
            )
            s.add_argument(
                "--no-check",
                action="store_true",
                help="skip the protocol-version check after flashing",
            )
            s.add_argument(
                "--wait",
                type=float,
                default=8.0,
                metavar="S",
                help="seconds to wait for the rebooted board to answer (default 8)",
            )
    return p


def main(argv: list[str]) -> int:
    args = _parser().parse_args(argv)
    out_dir = Path(args.out)
    report: dict = {}
    if args.action == "build" or not args.no_build:
        result = build(out_dir, source_dir=Path(args.source), mpy_cross=args.mpy_cross)
        report["build"] = result.to_json()
        if not args.json:
            print(
                f"built {len(result.files)} files into {result.out_dir} "
                f"({len(result.compiled)} compiled: {', '.join(result.compiled)}); "
                f"{result.mpy_cross_version}; protocol version {result.protocol_version}"
            )
    if args.action == "flash":
        manifest = load_build(out_dir)
        files = list(manifest["files"])
        compiled = [f[: -len(".mpy")] for f in files if f.endswith(".mpy")]
        argv_ = mpremote_argv(
            find_tool("mpremote", args.mpremote), args.port, out_dir.resolve(), files, compiled
        )
        run_mpremote(argv_)
        report["flashed"] = {"port": args.port, "files": files}
        if not args.json:
            print(f"copied {len(files)} files to the board on {args.port} and reset it")
        if not args.no_check:
            expected = manifest.get("protocol_version")
            if expected is None:
                raise FirmwareError(
                    f"{out_dir}: the build names no protocol version (protocol.py has no "
                    "PROTOCOL_VERSION); pass --no-check to skip the check"
                )
            hello = check_protocol(args.port, expected, wait_s=args.wait)
            report["hello"] = hello
            if not args.json:
                print(f"firmware answers: protocol version {expected} matches the host ({hello})")
    if args.json:
        print(json.dumps(report, indent=2, default=str))
    return 0
