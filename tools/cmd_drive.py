"""`racer drive`: drive the car with the active model, or the whole car in simulation.

    racer drive --headless --camera picamera2|opencv:DEV|replay:DIR --port DEV
                [--model NAME|FILE] [--max-speed F] [--mapping deepracer|absolute] ...
    racer drive --sim --track TRACK --model FILE|NAME --laps N [--fast] [--json]

On the car, in a terminal and without --headless, it opens the live console
(`vehicle.console.run(args)`); `args.drive_recipe` (`open_car_drive`) builds the same
drive this command would run, in the console's loop process
(`vehicle.console.loop_process`), so the console only adds the screen and never slows
the loop.
Headless prints one status line per second and a summary; `--json` prints the summary as
JSON. Exit status: 0 when the run ended normally, 1 when it ended on a fault (link lost,
camera failed, inference failing), 2 for bad options or a refusal to start.

Calibration: `--calibration FILE`, else the car's calibration file. When there is none at
the default path, it drives with DeepRacer's factory pulse widths and says so on stderr;
a calibration that exists but cannot be loaded (or a broken install that cannot load
one) refuses to start, exit 2, rather than fall back to factory pulse widths.

`--sim` runs the hardware-in-the-loop simulation (`sim2real.hil`): the real drive loop and
link over a pty to the real firmware code on a simulated board, the simulator rendering
the camera; it needs the training-side packages (sim2real, tracks). In a terminal (no
--headless, no --json) it opens the same live console over the simulated car, the whole
car in the loop process (`sim_loop_parts`: `open_sim_drive`), its lap timer fed by the
simulator; otherwise a progress bar, or the JSON report with --json.
"""

from __future__ import annotations

import argparse
import functools
import json
import logging
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

from vehicle.errors import DriveError


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="racer drive",
        description="Drive the car with a model (console, headless) or try the whole car "
        "in simulation (--sim).",
    )
    mode = p.add_argument_group("mode")
    mode.add_argument("--headless", action="store_true", help="plain log output, no console")
    mode.add_argument("--sim", action="store_true", help="hardware-in-the-loop simulation")
    car = p.add_argument_group("car")
    car.add_argument(
        "--camera",
        default="picamera2",
        help="picamera2 | opencv:DEV (index, /dev/videoN or a video file) | replay:DIR",
    )
    car.add_argument("--port", help="serial port of the motor controller, e.g. /dev/serial0")
    car.add_argument("--baud", type=int, default=115200, help="serial baud rate")
    car.add_argument("--calibration", type=Path, help="calibration file (default: the car's)")
    car.add_argument("--store", type=Path, help="model store folder (default: the car's)")
    car.add_argument(
        "--no-rearm",
        action="store_true",
        help="stop instead of re-arming when the firmware reports a failsafe (a burst of "
        "lost commands) while the link is healthy",
    )
    car.add_argument(
        "--allow-rate-mismatch",
        action="store_true",
        help="drive even if the camera or loop rate differs from the model's",
    )
    common = p.add_argument_group("model and driving")
    common.add_argument(
        "--model",
        help="a .tflite file, a bundle file, or a model name in the store "
        "(default: the store's active model)",
    )
    common.add_argument("--metadata", type=Path, help="model_metadata.json for a bare .tflite")
    common.add_argument(
        "--max-speed",
        type=float,
        default=None,
        help="max-speed fraction 0-1 (default: 1 in simulation, 0.5 on the car)",
    )
    common.add_argument(
        "--mapping",
        choices=("deepracer", "absolute"),
        default=None,
        help="action -> pulses: DeepRacer's relative mapping, or the calibrated speed "
        "curve (default: deepracer on the car, absolute in simulation)",
    )
    common.add_argument("--duration", type=float, help="stop after this many seconds")
    common.add_argument("--frames", type=int, help="stop after this many frames")
    common.add_argument("--log-dir", type=Path, help="write a run log (JSONL + frames) here")
    common.add_argument(
        "--save-frames", type=int, default=0, metavar="N", help="save every N-th frame (0: none)"
    )
    common.add_argument("--json", action="store_true", help="print the summary as JSON")
    sim = p.add_argument_group("simulation (--sim)")
    sim.add_argument("--track", default="reinvent_like", help="track name or .npy file")
    sim.add_argument("--laps", type=int, default=1, help="laps to drive")
    sim.add_argument("--fast", action="store_true", help="as fast as possible, not real time")
    sim.add_argument("--seed", type=int, default=0, help="seed of the simulated world")
    return p


def main(argv: list[str]) -> int:
    args = _parser().parse_args(argv)
    if args.max_speed is not None and not 0.0 <= args.max_speed <= 1.0:
        raise DriveError(f"--max-speed {args.max_speed} must be within 0-1 (e.g. 0.5 for 50 %)")
    if args.sim:
        return _run_sim(args)
    if args.port is None:
        raise DriveError("--port is required on the car (e.g. --port /dev/serial0)")
    args.make_drive = lambda on_frame=None: _CarSession(args, on_frame)
    if not args.headless and not args.json and sys.stdout.isatty():
        try:
            from vehicle.console.app import run as run_console
            from vehicle.console.loop_process import DriveRecipe
        except ModuleNotFoundError as exc:
            missing = (exc.name or "").split(".")[0]
            if missing not in ("textual", "rich"):
                raise  # a bug in openracer, not a missing package
            raise DriveError(
                f"the live console needs {missing!r}, which is not installed; reinstall "
                "openracer (`pip install --force-reinstall openracer`) or drive without "
                "the console: --headless"
            ) from exc
        _refuse_before_the_console(args)
        args.drive_recipe = DriveRecipe(functools.partial(open_car_drive, _plain(args)))
        return int(run_console(args) or 0)
    return _run_headless(args)


def _refuse_before_the_console(args: argparse.Namespace) -> None:
    """What would refuse the drive (a calibration that cannot be loaded, a `--model` that
    cannot be) refuses here, as the one-line exit-2 error headless gives, before the
    console takes the screen; the loop process opens both again when the drive starts.
    The "no calibration, factory pulse widths" notice is printed here too, so it is on
    the terminal when the console closes."""
    from vehicle.inference import load_tflite_policy

    if args.model is not None:  # without one the console's picker chooses
        load_tflite_policy(args.model, metadata=args.metadata, store_dir=args.store)
    _load_calibration(args.calibration)


def _plain(args: argparse.Namespace) -> argparse.Namespace:
    """The options alone (picklable: no factories), for the loop process."""
    skip = ("make_drive", "drive_recipe")
    return argparse.Namespace(**{k: v for k, v in vars(args).items() if k not in skip})


@contextmanager
def open_car_drive(
    args: argparse.Namespace, store_model: str | None, on_frame: Any
) -> Iterator[Any]:
    """The drive `racer drive` runs, opened in the console's loop process
    (`vehicle.console.loop_process.DriveRecipe`): camera, model, link and run log from the
    options, with `store_model` (a model chosen in the console) instead of `--model`."""
    if store_model is not None:
        args = argparse.Namespace(**{**vars(args), "model": store_model})
    with _CarSession(args, on_frame) as session:
        yield session.drive


# -- on the car ---------------------------------------------------------------------------


class _CarSession:
    """Opens camera, model, link and run log from the options; `.drive` is ready to
    `run()`; use as a context manager so everything closes (neutral first)."""

    def __init__(self, args: argparse.Namespace, on_frame: Any = None) -> None:
        self.args = args
        self.on_frame = on_frame
        self._stack = ExitStack()
        self.drive: Any = None

    def __enter__(self) -> _CarSession:
        from vehicle.camera import open_camera
        from vehicle.drive import Drive, DriveConfig, mapping_for
        from vehicle.inference import load_tflite_policy
        from vehicle.link import Link, LinkConfig
        from vehicle.runlog import RunLog

        a = self.args
        try:
            policy = load_tflite_policy(a.model, metadata=a.metadata, store_dir=a.store)
            pulses, absolute, cal_source = _load_calibration(a.calibration)
            mapping = mapping_for(policy, a.mapping or "deepracer", absolute)
            camera = self._stack.enter_context(
                open_camera(a.camera, rate_hz=max(30.0, policy.metadata.control_rate_hz))
            )
            link = self._stack.enter_context(Link(LinkConfig(port=a.port, baud=a.baud)))
            runlog = None
            if a.log_dir is not None:
                runlog = RunLog(
                    a.log_dir / time.strftime("drive-%Y%m%d-%H%M%S"),
                    {
                        "source": "racer drive",
                        "model": policy.describe(),
                        "rate_hz": policy.metadata.control_rate_hz,
                        "camera": camera.describe(),
                        "calibration": pulses.to_dict(),
                        "calibration_file": cal_source,
                        "mapping": a.mapping or "deepracer",
                        "firmware": link.firmware.version if link.firmware else None,
                    },
                    frame_every=a.save_frames,
                )
            self.drive = Drive(
                camera,
                policy,
                link,
                pulses,
                mapping,
                DriveConfig(
                    max_speed_fraction=0.5 if a.max_speed is None else a.max_speed,
                    allow_rate_mismatch=a.allow_rate_mismatch,
                    rearm_after_failsafe=not a.no_rearm,
                    max_frames=a.frames,
                    duration_s=a.duration,
                    save_frame_every=a.save_frames,
                ),
                runlog=runlog,
                on_frame=self.on_frame,
            )
        except BaseException:
            self._stack.close()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self._stack.close()


def _load_calibration(path: Path | None) -> tuple[Any, Any, str]:
    """(PulseCalibration, AbsoluteMapping | None, where it came from)."""
    from vehicle.pulses import PulseCalibration

    try:
        from calibration.store import CalibrationStore
    except ImportError as exc:
        raise DriveError(
            f"cannot load the car's calibration: the calibration package does not import "
            f"({type(exc).__name__}: {exc}); refusing to drive with DeepRacer's factory "
            "pulse widths. Reinstall openracer (`pip install --force-reinstall openracer`)"
        ) from exc
    store = CalibrationStore(path)
    if not store.exists():
        if path is not None:
            raise DriveError(f"{path}: no calibration file there; run `racer calibrate`")
        print(
            f"racer drive: no calibration at {store.path}; using DeepRacer's factory pulse "
            "widths (run `racer calibrate` first for a real car)",
            file=sys.stderr,
        )
        return PulseCalibration(), None, "DeepRacer factory defaults"
    cal = store.load()
    return cal.pulses(), cal.absolute_mapping(), str(store.path)


def _run_headless(args: argparse.Namespace) -> int:
    status = _StatusPrinter(quiet=args.json)
    with _CarSession(args, status) as session:
        drive = session.drive
        p = drive.policy
        if not args.json:
            print(
                f"racer drive: model {p.describe().get('path')} ({p.backend}), camera "
                f"{drive.camera.name}, port {args.port}, max speed "
                f"{drive.max_speed_fraction:.0%}; Ctrl-C stops (neutral first)",
                flush=True,
            )
        result = drive.run()
    summary = result.summary()
    _print_summary(summary, args.json)
    return 0 if result.ok else 1


class _StatusPrinter:
    """One status line per second, events as they happen."""

    def __init__(self, quiet: bool = False) -> None:
        self.quiet = quiet
        self.last = 0.0
        self.loops: list[float] = []

    def __call__(self, st: Any) -> None:
        if st.loop_ms is not None:
            self.loops.append(st.loop_ms)
        if self.quiet:
            return
        if st.event:
            print(f"  frame {st.frame}: {st.event.replace('_', ' ')} -> neutral", flush=True)
        now = time.monotonic()
        if now - self.last >= 1.0 and self.loops:
            self.last = now
            loops = sorted(self.loops)
            p50 = loops[len(loops) // 2]
            tel = st.telemetry
            batt = f"{tel.battery_v:.2f} V" if tel is not None else "-"
            fw = tel.state if tel is not None else "-"
            print(
                f"  frame {st.frame:6d}  loop p50 {p50:6.2f} ms  steer {st.steer_us} us  "
                f"throttle {st.throttle_us} us  battery {batt}  link {st.link_state}  "
                f"firmware {fw}",
                flush=True,
            )
            self.loops.clear()


def _print_summary(summary: dict[str, Any], as_json: bool) -> None:
    if as_json:
        print(json.dumps(summary, indent=2))
        return
    print(f"stopped: {summary['stop_reason']}")
    keys = (
        "frames",
        "commands",
        "duration_s",
        "loop_p50_ms",
        "loop_p99_ms",
        "infer_p50_ms",
        "deadline_misses",
        "stale_frames",
        "camera_stalls",
        "inference_errors",
        "link_errors",
        "firmware_failsafes",
        "rearms",
        "rearm_failures",
    )
    for k in keys:
        if k in summary:
            print(f"  {k:20s} {summary[k]}")


# -- simulation -------------------------------------------------------------------------


def _run_sim(args: argparse.Namespace) -> int:
    from sim2real.hil.session import HILConfig, run_hil
    from vehicle.inference import load_tflite_policy

    if args.laps < 1:
        raise DriveError(f"--laps {args.laps} must be at least 1")
    policy = load_tflite_policy(args.model, metadata=args.metadata, store_dir=args.store)
    config = HILConfig(
        track=args.track,
        laps=args.laps,
        fast=args.fast,
        max_speed_fraction=1.0 if args.max_speed is None else args.max_speed,
        mapping=args.mapping or "absolute",
        seed=args.seed,
        log_dir=args.log_dir,
        save_frame_every=args.save_frames,
    )
    if args.json:
        report = run_hil(config, policy)
        print(json.dumps(report, indent=2))
        return 0 if report["ok"] else 1
    if not args.headless and sys.stdout.isatty():
        return _run_sim_console(args, config, policy)
    print(
        f"racer drive --sim: {args.track}, {args.laps} lap(s), model "
        f"{policy.describe().get('path')} ({policy.backend}), "
        f"{'fast' if args.fast else 'real time'}; firmware on a simulated board over a pty",
        flush=True,
    )
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    with Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        TextColumn("{task.fields[info]}"),
        TimeElapsedColumn(),
    ) as bar:
        task = bar.add_task("laps", total=args.laps * 100.0, info="")

        def on_event(kind: str, info: dict[str, Any]) -> None:
            if kind == "progress":
                done = info["laps"] * 100.0 + max(0.0, info["progress"])
                bar.update(task, completed=done, info=f"sim {info['sim_time_s']:.1f} s")
            elif kind == "lap":
                bar.console.print(f"  lap {info['lap']}: {info['lap_time_s']:.2f} s")
            elif kind == "off_track":
                bar.console.print(f"  off track ({info['count']}): back on the centre line")

        report = run_hil(config, policy, on_event=on_event)
    print(f"stopped: {report['stop_reason']}")
    for k, v in report.items():
        if k not in ("stop_reason", "track", "model"):
            print(f"  {k:30s} {v}")
    return 0 if report["ok"] else 1


def _run_sim_console(args: argparse.Namespace, config: Any, policy: Any) -> int:
    """The live console over the simulated car, driven from the loop process
    (`sim_loop_parts`)."""
    from vehicle.console.app import open_store, run

    store = open_store(args.store)
    label = _model_label(args.model, policy)
    parts = sim_loop_parts(
        config,
        policy,
        model=args.model,
        metadata=args.metadata,
        label=label,
        store=store,
    )
    return run(args, parts)


def _log_sim_event(kind: str, info: dict[str, Any]) -> None:
    """Laps and off-tracks of the simulator, for the console's log tail."""
    log = logging.getLogger("simulator")
    if kind == "lap":
        log.info(f"lap {info['lap']}: {info['lap_time_s']:.2f} s")
    elif kind == "off_track":
        log.warning(f"off track ({info['count']}): back on the centre line")


def _lap_times(info: Any) -> Any:
    """`vehicle.console.figures.LapTimes` from the simulator's `sim2real.laps.LapInfo`."""
    from vehicle.console.figures import LapTimes

    times = info.lap_times_s
    return LapTimes(
        info.current_s,
        times[-1] if times else None,
        min(times) if times else None,
        len(times),
    )


def sim_lap_times(drive: Any) -> Any:
    """The open simulated drive's lap times (its camera is the simulator's)."""
    return _lap_times(drive.camera.laps.info())


@contextmanager
def open_sim_drive(
    config: Any,
    model: str | None,
    metadata: Path | None,
    store_dir: Path | None,
    store_model: str | None,
    on_frame: Any,
) -> Iterator[Any]:
    """A fresh simulated car (world at the start line, firmware on a pty, link) and the
    drive over it, opened in the console's loop process: the model from the command line
    (`model`, `metadata`), or `store_model` chosen in the console from `store_dir`."""
    from sim2real.hil.session import hil_drive
    from vehicle.inference import load_tflite_policy

    if store_model is not None:
        policy = load_tflite_policy(store_model, store_dir=store_dir)
    else:
        policy = load_tflite_policy(model, metadata=metadata, store_dir=store_dir)
    with hil_drive(config, policy, on_frame=on_frame, on_event=_log_sim_event) as session:
        yield session.drive


def sim_loop_parts(
    config: Any,
    policy: Any,
    *,
    model: str | None,
    metadata: Path | None = None,
    label: str,
    store: Any = None,
) -> Any:
    """`vehicle.console.ConsoleParts` over the hardware-in-the-loop car with each start
    in the console's loop process (`open_sim_drive`); `policy` (already loaded here)
    gives the head line's metadata."""
    from vehicle.console.app import CommandLineModel, ConsoleParts
    from vehicle.console.loop_process import DriveRecipe

    store_dir = getattr(store, "root", None)
    recipe = DriveRecipe(
        functools.partial(open_sim_drive, config, model, metadata, store_dir),
        lap_times=sim_lap_times,
        loggers=("vehicle", "simulator"),
    )
    return ConsoleParts(
        recipe=recipe,
        store=store,
        max_speed_fraction=config.max_speed_fraction,
        title=f"sim {config.track}{' fast' if config.fast else ''}",
        initial_model=CommandLineModel(
            label,
            metadata=policy.metadata,
            note="from the command line" if model else "the store's active model",
        ),
        loggers=("vehicle", "simulator"),
    )


def _model_label(model: str | None, policy: Any) -> str:
    """A short name for the console's head line: a file as folder/name, else the name."""
    path = Path(model or str(policy.describe().get("path") or "active model"))
    if path.exists() and path.parent.name:
        return f"{path.parent.name}/{path.name}"
    return str(model or path.name)


def sim_console_parts(
    config: Any,
    policy: Any,
    *,
    label: str,
    from_command_line: bool = True,
    store: Any = None,
) -> tuple[Any, Callable[[], Any]]:
    """`vehicle.console.ConsoleParts` over the hardware-in-the-loop car, the drive in a
    thread of this process (tests that reach into the simulated car; `racer drive --sim`
    uses `sim_loop_parts`): each start opens a fresh simulated car (world at the start
    line, firmware on a pty, link) through `sim2real.hil.session.hil_drive(config, ...)`;
    the lap timer reads that simulator's laps
    (simulated seconds), laps and off-tracks go to the log tail. `policy` drives the
    command-line model; a model chosen from `store` is loaded by name. Also returns a
    callable giving the latest `sim2real.hil.session.HILSession` (None before the first start)."""
    from sim2real.hil.session import hil_drive
    from vehicle.console.app import CommandLineModel, ConsoleParts, LapTimes
    from vehicle.inference import load_tflite_policy

    logging.getLogger("simulator").setLevel(logging.INFO)  # laps show in the log tail
    current: dict[str, Any] = {}
    on_event = _log_sim_event

    @contextmanager
    def open_drive(model: Any, on_frame: Any) -> Iterator[Any]:
        chosen = policy
        if model is not None and not isinstance(model, CommandLineModel):
            chosen = load_tflite_policy(model.name, store_dir=getattr(store, "root", None))
        with hil_drive(config, chosen, on_frame=on_frame, on_event=on_event) as session:
            current["session"] = session
            yield session.drive

    def laps() -> LapTimes:
        session = current.get("session")
        if session is None:
            return LapTimes(0.0)
        return _lap_times(session.laps())

    parts = ConsoleParts(
        open_drive=open_drive,
        store=store,
        max_speed_fraction=config.max_speed_fraction,
        laps=laps,
        title=f"sim {config.track}{' fast' if config.fast else ''}",
        initial_model=CommandLineModel(
            label,
            metadata=policy.metadata,
            note="from the command line" if from_command_line else "the store's active model",
        ),
        loggers=("vehicle", "simulator"),
    )
    return parts, lambda: current.get("session")
