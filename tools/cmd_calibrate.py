"""`racer calibrate`: the Textual calibrator on the car (or against the simulated board),
and the non-interactive pieces scripts need (show, DeepRacer import/export).

    racer calibrate                       # on the car: port from $OPENRACER_PORT or /dev/serial0
    racer calibrate --port /dev/ttyACM0
    racer calibrate --sim                 # the real firmware on a simulated board (a laptop)
    racer calibrate --show [--json]       # print the saved calibration
    racer calibrate --import-deepracer /opt/aws/deepracer/calibration.json
    racer calibrate --export-deepracer calibration.json

The calibration file is `--file`, else `$OPENRACER_CALIBRATION`, else
`$XDG_CONFIG_HOME/openracer/calibration.json` (`~/.config/...`).

Safety: the car is left at neutral and disarmed however the app ends (quit, an exception,
SIGTERM, or the SSH session hanging up); the firmware's own failsafe stops the motor
within 100 ms if this process dies outright.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
from pathlib import Path
from typing import Any

DEFAULT_PORT = "/dev/serial0"
"""The Raspberry Pi's UART, where the motor controller sits on an openracer car."""


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="racer calibrate",
        description="Calibrate steering, throttle, speed curve, battery compensation and "
        "camera from a terminal (keyboard only, fits 80x24).",
    )
    where = p.add_mutually_exclusive_group()
    where.add_argument(
        "--port",
        help=f"motor controller serial port (default: $OPENRACER_PORT or {DEFAULT_PORT})",
    )
    where.add_argument(
        "--sim",
        action="store_true",
        help="run against the real firmware on a simulated board (no car needed)",
    )
    p.add_argument("--file", type=Path, help="calibration file to edit")
    p.add_argument(
        "--camera",
        default="auto",
        help="camera for the preview: auto (the Pi camera; with --sim the simulator's "
        "view of the track), none, a device index, or a vehicle.camera spec such as "
        "opencv:/dev/video0 or replay:DIR",
    )
    p.add_argument(
        "--preview-fps", type=float, default=2.0, help="camera preview rate, 0.2-5 (default 2)"
    )
    p.add_argument("--show", action="store_true", help="print the saved calibration and exit")
    p.add_argument("--json", action="store_true", help="with --show: print JSON")
    p.add_argument(
        "--import-deepracer",
        type=Path,
        metavar="FILE",
        help="import DeepRacer's calibration.json (pulse widths) into the file and exit",
    )
    p.add_argument(
        "--export-deepracer",
        type=Path,
        metavar="FILE",
        help="write the pulse widths as DeepRacer's calibration.json and exit",
    )
    return p


def _summary(cal: Any, path: Path) -> str:
    s, t = cal.steering, cal.throttle
    lines = [
        f"calibration {path}",
        f"  steering  left {s.left_us} us  centre {s.mid_us} us  right {s.right_us} us  "
        f"polarity {s.polarity:+d}  angles "
        + (
            "not measured"
            if s.max_steer_deg is None
            else f"left {s.left_deg:g} deg, right {s.right_deg:g} deg"
        ),
        f"  throttle  forward {t.forward_max_us} us  neutral {t.neutral_us} us  "
        f"reverse {t.reverse_max_us} us  polarity {t.polarity:+d}",
    ]
    fit = cal.speed.fit()
    if fit is None:
        lines.append("  speed     no runs (absolute m/s mode unavailable)")
    else:
        runs = ", ".join(f"{p.command:.2f}->{p.speed_mps:.2f}" for p in cal.speed.points)
        lines.append(
            f"  speed     {len(cal.speed.points)} run(s) [{runs}] m/s, top "
            f"{fit.top_speed_mps:.2f} m/s at {cal.speed.reference_battery_v:.2f} V"
        )
    pts = ", ".join(f"{p.battery_v:.2f} V->{p.top_speed_mps:.2f}" for p in cal.battery.points)
    lines.append(f"  battery   {pts or 'no points'}")
    c = cal.camera
    lines.append(
        f"  camera    rotation {c.rotation_deg} deg, flip h {c.flip_horizontal}, "
        f"flip v {c.flip_vertical}, exposure "
        + ("auto" if c.exposure_us is None else f"{c.exposure_us} us")
    )
    return "\n".join(lines)


def _open_camera(spec: str, *, sim: bool) -> Any:
    """A frame source for the preview (`read()` -> image or `vehicle.camera.Frame`), or
    None: the camera screen then says there is no camera."""
    if spec == "none":
        return None
    try:
        if spec == "auto" and sim:
            from sim2real.hil.camera import StartLineCamera

            return StartLineCamera()
        from vehicle.camera import open_camera

        if spec == "auto":
            import importlib.util

            if importlib.util.find_spec("picamera2") is None:
                return None  # not a Raspberry Pi with its camera stack
            spec = "picamera2"
        elif spec.isdigit():
            spec = f"opencv:{spec}"
        return open_camera(spec, rate_hz=10.0)
    except Exception as exc:  # the calibrator works without a preview
        print(f"racer calibrate: camera unavailable ({exc}); preview off", file=sys.stderr)
        return None


def main(argv: list[str]) -> int:
    args = _parser().parse_args(argv)
    from calibration.deepracer import export_deepracer, import_deepracer
    from calibration.errors import CalibrationValueError
    from calibration.store import CalibrationStore

    store = CalibrationStore(args.file)
    if not 0.2 <= args.preview_fps <= 5.0:
        raise CalibrationValueError(
            f"--preview-fps {args.preview_fps:g} is outside 0.2-5; a slow SSH link wants 1-2"
        )

    if args.import_deepracer is not None:
        cal = import_deepracer(args.import_deepracer, base=store.load_or_default())
        store.save(cal)
        print(f"imported {args.import_deepracer} into {store.path}")
        print(_summary(cal, store.path))
        return 0
    if args.export_deepracer is not None:
        export_deepracer(store.load(), args.export_deepracer)
        print(f"wrote {args.export_deepracer} (DeepRacer calibration.json, nanoseconds)")
        return 0
    if args.show:
        cal = store.load()
        if args.json:
            print(json.dumps(cal.to_dict(), indent=2))
        else:
            print(_summary(cal, store.path))
        return 0

    if not (sys.stdin.isatty() and sys.stdout.isatty()):
        raise CalibrationValueError(
            "racer calibrate is interactive and needs a terminal; in scripts use --show, "
            "--import-deepracer or --export-deepracer"
        )
    store.load_or_default()  # a broken file is reported before anything moves
    return _run_app(args, store)


def _run_app(args: argparse.Namespace, store: Any) -> int:
    from calibration.app import CalibratorApp
    from vehicle.link import Link, LinkConfig

    sim = None
    if args.sim:
        from sim2real.hil.board import start_simulated_car

        sim = start_simulated_car()
        port, name = sim.port, "simulated board"
    else:
        port = args.port or os.environ.get("OPENRACER_PORT") or DEFAULT_PORT
        name = port
    app = None
    try:
        # the simulated board shares this process (and its GIL) with the app: on a busy
        # laptop its replies can lag, so --sim allows a longer silence than a real car.
        link = LinkConfig(port=port, timeout_s=1.0 if sim is not None else 0.3)
        # a car that does not answer is a clear error here, before the app; the command
        # stream's own process then opens the link (calibration.stream_process)
        Link(link).open().close()
        camera = _open_camera(args.camera, sim=args.sim)
        odometer = readout = None
        if sim is not None:
            physics = sim.physics

            def odometer() -> float:
                return float(physics.odometer_m)

            def readout() -> str:
                deg = physics.steer_deg
                side = "left" if deg > 0.05 else ("right" if deg < -0.05 else "straight")
                return (
                    f"sim car: wheels {abs(deg):4.1f} deg {side}, "
                    f"{physics.speed_mps:4.2f} m/s, odometer {physics.odometer_m:6.2f} m"
                )

        app = CalibratorApp(
            link,
            store,
            camera=camera,
            preview_fps=args.preview_fps,
            link_name=name,
            odometer=odometer,
            readout=readout,
        )

        def hang_up(signum: int, _frame: object) -> None:
            # SSH dropped or we were told to stop: neutral first, then leave the app
            app.shutdown_link()
            app.exit(return_code=128 + signum)

        for sig in (signal.SIGTERM, signal.SIGHUP):
            signal.signal(sig, hang_up)
        app.run()
        return int(app.return_code or 0)
    finally:
        if app is not None:
            app.shutdown_link()  # neutral, disarm, the stream process ended
        if sim is not None:
            sim.stop()
