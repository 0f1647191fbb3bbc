"""`racer flash BUNDLE --car user@host[:port]|STORE_DIR`: install a bundle on a car over SSH or into a store.

Over SSH the system OpenSSH client carries the bundle and the car's own `racer models
install` verifies and installs it (hashes, signature if the car trusts keys, shapes, one
inference); `--activate` makes it the active model, with the previous one kept for
`racer models rollback`. With a folder instead of a host, the bundle goes into that store
directly (a mounted SD card or USB stick, DeepRacer style).
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path

from tools.flash import (
    SshCar,
    flash_local,
    flash_ssh,
    parse_car,
    show_progress_default,
)


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="racer flash",
        description="Install a model bundle on a car over SSH, or into a local/mounted store.",
    )
    p.add_argument("bundle", help="the .tar.gz written by `racer export`")
    p.add_argument(
        "--car",
        required=True,
        help="user@host[:port] (over SSH) or a store folder path (local or mounted)",
    )
    p.add_argument("--activate", action="store_true", help="make it the active model")
    p.add_argument("--name", help="install under this name instead of the bundle's")
    p.add_argument(
        "--remote-racer",
        default=os.environ.get("OPENRACER_REMOTE_RACER", "racer"),
        metavar="PATH",
        help="the racer command on the car (default: racer, or $OPENRACER_REMOTE_RACER)",
    )
    p.add_argument(
        "--remote-store",
        metavar="DIR",
        help="store folder on the car (default: the car's $OPENRACER_STORE or its default)",
    )
    p.add_argument("-i", "--identity", metavar="KEY", help="SSH private key file")
    p.add_argument(
        "-o",
        "--ssh-option",
        action="append",
        default=[],
        metavar="OPT",
        help="extra ssh -o option, repeatable (e.g. -o StrictHostKeyChecking=accept-new)",
    )
    p.add_argument("--ssh", default="ssh", metavar="PATH", help="ssh client (default: ssh)")
    p.add_argument(
        "--timeout", type=float, default=300.0, metavar="S", help="give up after S seconds"
    )
    p.add_argument("--json", action="store_true", help="print the car's answer as JSON")
    return p


def main(argv: list[str]) -> int:
    args = _parser().parse_args(argv)
    car = parse_car(args.car)
    bundle = Path(args.bundle)
    if isinstance(car, SshCar):
        answer = flash_ssh(
            bundle,
            car,
            activate=args.activate,
            name=args.name,
            remote_racer=args.remote_racer,
            remote_store=args.remote_store,
            ssh=args.ssh,
            identity=args.identity,
            options=args.ssh_option,
            timeout_s=args.timeout,
            show_progress=show_progress_default() and not args.json,
        )
    else:
        if args.remote_store:
            print("racer flash: note: --remote-store is ignored for a local store folder")
        answer = flash_local(bundle, car, activate=args.activate, name=args.name)
    if args.json:
        print(json.dumps(answer, indent=2, default=str))
        return 0
    state = "installed and activated" if answer.get("active") else "installed (not active)"
    parity = answer.get("parity") or {}
    agree = parity.get("agreement")
    print(
        f"{answer['car']}: {state} {answer['name']} "
        f"({answer.get('quantization') or '?'}, {answer.get('size_bytes')} bytes"
        + (f", parity agreement {100 * agree:.2f}%" if agree is not None else "")
        + (f", signed {answer['signed_key_id']}" if answer.get("signed_key_id") else "")
        + ")"
    )
    print(f"  store: {answer.get('path')}")
    if not answer.get("active"):
        print(f"  make it active with: racer models activate {answer['name']}  (on the car)")
    return 0
