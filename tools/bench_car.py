"""`racer bench car`: how fast the car's software is on this machine.

Measures, in one run:
- loop latency: the real drive loop (`vehicle.drive.Drive`, unpaced) from "frame
  available" to "command written", with 640x480 colour frames, an int8 model, and the real
  link writing to the real firmware code, which runs in a separate process on a simulated
  board behind a pty (as the RP2040 is a separate chip on the car); per-stage p50/p99;
- a reference measured in the same run: the same work written as one bare sequence
  (preprocess, invoke, pack + CRC16, pty write) without the loop's bookkeeping; the
  ratio loop/reference is the price of the loop's safety checks and logging hooks;
- inference alone (`Policy.infer` in a tight loop);
- protocol rates: command frames encoded per second, and bytes/frames parsed per second
  by the firmware's parser under CPython;
- with `--console`: the same loop driven from the `racer drive` console running in a real
  terminal (tmux, 110x35; the loop in the console's loop process,
  `vehicle.console.loop_process`), against headless (the loop in this process, no
  screen), alternating `--rounds` times in the same run: p50/p99 of both, their ratio,
  and the CPU share of the console process and of the loop process (CPU seconds per
  second of the drive; 1.0 = one core). Each case gets a fresh simulated board;
- with `--calibrate`: `racer calibrate`'s 50 Hz command stream in a real terminal (tmux)
  on its camera screen, with the camera preview repainting (640x480 frames at
  `--preview-fps`) and without a camera: p50/p99 of the period between commands.

The model: `--model` (a .tflite, bundle or store name), else the DeepRacer shallow CNN
with fresh weights converted to full-integer int8 (needs TensorFlow once; cached under
~/.cache/openracer/bench). Timing does not depend on the weights.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="racer bench car", description=__doc__.split("\n\n")[0])
    p.add_argument("--model", help="model to time (.tflite, bundle, or store name)")
    p.add_argument("--frames", type=int, default=1500, help="loop iterations to time")
    p.add_argument("--json", action="store_true", help="print the figures as JSON")
    p.add_argument(
        "--console",
        action="store_true",
        help="also time the loop with the live console open in a terminal (tmux) against "
        "headless, in the same run",
    )
    p.add_argument(
        "--rounds",
        type=int,
        default=3,
        help="console/headless (--console) and no-preview/preview (--calibrate) pairs",
    )
    p.add_argument(
        "--calibrate",
        action="store_true",
        help="also time racer calibrate's command stream with and without the camera preview",
    )
    p.add_argument(
        "--calibrate-s", type=float, default=20.0, help="seconds per calibrate case (--calibrate)"
    )
    p.add_argument(
        "--preview-fps", type=float, default=5.0, help="calibrator preview rate (--calibrate)"
    )
    p.add_argument(
        "--console-rate",
        type=float,
        default=60.0,
        help="loop rate of the console and headless rounds, Hz (--console): paced as on the "
        "car, faster than the model's 15 Hz so the rounds stay short",
    )
    return p


def _bench_model() -> Path:
    """The DeepRacer shallow CNN, int8, fresh weights; built once and cached."""
    cache = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "openracer" / "bench"
    tfl = cache / "shallow-int8.tflite"
    meta = cache / "model_metadata.json"
    if tfl.exists() and meta.exists():
        return tfl
    from trainer.export import convert
    from trainer.networks import build_policy
    from vehicle.files import atomic_write
    from vehicle.metadata import ModelMetadata

    md = ModelMetadata()
    rng = np.random.default_rng(0)
    frames = rng.integers(0, 256, (32, 120, 160, 1), dtype=np.uint8)
    data = convert(build_policy(md), "int8", frames)
    atomic_write(tfl, data)
    atomic_write(meta, json.dumps(md.to_json()).encode())
    return tfl


SETTLE_S = 1.5
"""The console run starts the drive this long after the console is up."""


def _pct(values: list[float], q: float) -> float:
    return round(float(np.percentile(values, q)), 4)


class _BenchCamera:
    """640x480 BGR frames, 'available' the moment they are read (no waiting)."""

    name = "bench"
    rate_hz = 1000.0

    def __init__(self) -> None:
        rng = np.random.default_rng(1)
        self.images = [rng.integers(0, 256, (480, 640, 3), dtype=np.uint8) for _ in range(8)]
        self.i = 0

    def read(self, timeout_s: float = 0.5) -> Any:
        from vehicle.camera import Frame

        self.i += 1
        return Frame(self.images[self.i % 8], time.monotonic(), self.i, "bgr")

    def close(self) -> None:
        pass

    def describe(self) -> dict[str, Any]:
        return {"camera": self.name}


@contextlib.contextmanager
def _firmware() -> Iterator[str]:
    """The real firmware code in its own process on a simulated board; its pty."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "sim2real.hil.board"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        port = proc.stdout.readline().strip() if proc.stdout else ""
        if not port.startswith("/dev/"):
            raise RuntimeError(f"simulated firmware did not start (got {port!r})")
        yield port
    finally:
        if proc.stdin:
            proc.stdin.close()
        proc.wait(timeout=10)


def _bench_link(port: str) -> Any:
    """The link to the simulated board for the console/headless rounds: that board is a
    process on a CPU the bench crowds (a real motor controller has its own chip), so it
    may be silent for longer than a car's 0.3 s before the link counts as lost; the same
    in both cases."""
    from vehicle.link import LinkConfig

    return LinkConfig(port=port, timeout_s=1.5, ack_timeout_s=2.0)


def _bench_config(policy: Any, frames: int, rate_hz: float | None = None) -> Any:
    """Unpaced (`rate_hz` None) or paced at `rate_hz`."""
    from vehicle.drive import DriveConfig

    return DriveConfig(
        max_speed_fraction=0.0,  # the simulated car stands still
        paced=rate_hz is not None,
        max_frames=frames,
        handle_signals=False,
        allow_rate_mismatch=True,
        rate_hz=rate_hz or policy.metadata.control_rate_hz,
    )


def _headless_loop(policy: Any, frames: int, rate_hz: float) -> tuple[list[float], float, float]:
    """The loop in this process, no screen: (latencies ms, CPU s, wall s)."""
    from vehicle.drive import Drive, mapping_for
    from vehicle.link import Link
    from vehicle.pulses import PulseCalibration

    with _firmware() as port, Link(_bench_link(port)) as link:
        drive = Drive(
            _BenchCamera(),  # type: ignore[arg-type]
            policy,
            link,
            PulseCalibration(),
            mapping_for(policy),
            _bench_config(policy, frames, rate_hz),
        )
        cpu, wall = time.process_time(), time.monotonic()
        result = drive.run()
        return result.loop_ms, time.process_time() - cpu, time.monotonic() - wall


@contextlib.contextmanager
def open_bench_drive(
    port: str, model: str, frames: int, rate_hz: float, _store: Any, on_frame: Any
) -> Any:
    """The bench's drive, opened in the console's loop process (a `DriveRecipe`)."""
    from vehicle.drive import Drive, mapping_for
    from vehicle.inference import load_tflite_policy
    from vehicle.link import Link
    from vehicle.pulses import PulseCalibration

    policy = load_tflite_policy(model)
    with Link(_bench_link(port)) as link:
        yield Drive(
            _BenchCamera(),  # type: ignore[arg-type]
            policy,
            link,
            PulseCalibration(),
            mapping_for(policy),
            _bench_config(policy, frames, rate_hz),
            on_frame=on_frame,
        )


def _in_terminal(args: list[str], timeout_s: float) -> dict[str, Any]:
    """`python -m tools.bench_car ARGS RESULT` in a real terminal (tmux, 110x35) against
    a fresh simulated board (its port is the first argument); its JSON result."""
    import shlex
    import shutil
    import tempfile

    if shutil.which("tmux") is None:
        raise RuntimeError("racer bench car --console/--calibrate needs tmux")
    with _firmware() as port, tempfile.TemporaryDirectory(prefix="racer-bench-") as tmp:
        out = Path(tmp) / "result.json"
        socket = f"racer-bench-{os.getpid()}"
        argv = [sys.executable, "-m", "tools.bench_car", args[0], port, *args[1:], str(out)]
        root = Path(__file__).resolve().parents[1]
        command = f"cd {shlex.quote(str(root))} && exec {shlex.join(argv)}"
        tmux = ["tmux", "-L", socket, "-f", "/dev/null"]
        subprocess.run([*tmux, "new-session", "-d", "-x", "110", "-y", "35", command], check=True)
        try:
            deadline = time.monotonic() + 120 + timeout_s
            while not out.exists():
                if time.monotonic() > deadline:
                    screen = subprocess.run(
                        [*tmux, "capture-pane", "-p"], capture_output=True, text=True
                    ).stdout
                    raise RuntimeError(f"the terminal run did not finish:\n{screen}")
                time.sleep(0.2)
        finally:
            subprocess.run([*tmux, "kill-server"], capture_output=True)
        report: dict[str, Any] = json.loads(out.read_text())
        return report


def _console_loop(model: str, frames: int, rate_hz: float) -> dict[str, Any]:
    """The console in a real terminal (tmux) driving the bench's loop in its loop
    process: the latencies it received, and both processes' CPU time."""
    return _in_terminal(["--console-run", model, str(frames), str(rate_hz)], frames / rate_hz)


class _PreviewCamera:
    """640x480 colour frames for the calibrator's preview."""

    def __init__(self) -> None:
        rng = np.random.default_rng(2)
        self.images = [rng.integers(0, 256, (480, 640, 3), dtype=np.uint8) for _ in range(4)]
        self.i = 0

    def read(self, timeout_s: float = 0.5) -> np.ndarray:
        self.i += 1
        return self.images[self.i % 4]


class _TimedLink:
    """The link, with the time of every command the calibrator sends; written to
    `times_file` when it closes."""

    def __init__(self, link: Any, times_file: Path) -> None:
        self._link = link
        self.times: list[float] = []
        self.times_file = times_file

    def command(self, steer_us: int, throttle_us: int) -> None:
        self.times.append(time.monotonic())
        self._link.command(steer_us, throttle_us)

    def close(self) -> None:
        self._link.close()
        from vehicle.files import atomic_write

        atomic_write(self.times_file, json.dumps(self.times).encode())

    def __getattr__(self, name: str) -> Any:
        return getattr(self._link, name)


def open_timed_link(port: str, times_file: str) -> _TimedLink:
    """The calibrator's link in its stream process, timing each command."""
    from vehicle.link import Link, LinkConfig

    return _TimedLink(Link(LinkConfig(port=port, timeout_s=1.0)).open(), Path(times_file))


def _calibrate_run(argv: list[str]) -> None:
    """In the tmux pane: the calibrator on its camera screen for a while, with or
    without a camera, its command stream in its own process as `racer calibrate` runs
    it; writes the command times to the result file."""
    import functools
    import tempfile

    from calibration.app import CalibratorApp
    from calibration.store import CalibrationStore
    from vehicle.files import atomic_write

    port, preview, seconds, fps = argv[0], argv[1] == "1", float(argv[2]), float(argv[3])
    out = Path(argv[4])
    with tempfile.TemporaryDirectory() as tmp:
        times_file = Path(tmp) / "times.json"
        app = CalibratorApp(
            functools.partial(open_timed_link, port, str(times_file)),
            CalibrationStore(Path(tmp) / "calibration.json"),
            camera=_PreviewCamera() if preview else None,
            preview_fps=fps,
            start="camera",
        )
        app.call_later(lambda: app.set_timer(SETTLE_S + seconds, app.exit))
        try:
            app.run()
        finally:
            app.shutdown_link()  # the stream process closes the link: the times file
            sent = json.loads(times_file.read_text()) if times_file.exists() else []
            t0 = sent[0] + SETTLE_S if sent else 0.0
            times = [t for t in sent if t >= t0]
            atomic_write(out, json.dumps({"times": times}).encode())


def _calibrate_figures(seconds: float, fps: float, rounds: int, log: Any) -> dict[str, Any]:
    """The calibrator's command period without and with the preview repainting,
    alternating `rounds` times; pooled percentiles."""
    out: dict[str, Any] = {"calibrate_preview_fps": fps}
    periods: dict[str, list[float]] = {"no_preview": [], "preview": []}
    for r in range(rounds):
        for case, flag in (("no_preview", "0"), ("preview", "1")):
            args = ["--calibrate-run", flag, str(seconds), str(fps)]
            times = _in_terminal(args, seconds)["times"]
            p = list(np.diff(times) * 1000)
            periods[case] += p
            log(
                f"  calibrate round {r + 1} {case}: period p50 {_pct(p, 50)} ms p99 "
                f"{_pct(p, 99)} ms (load {os.getloadavg()[0]:.2f})"
            )
    for case, p in periods.items():
        out[f"calibrate_{case}_period_p50_ms"] = _pct(p, 50)
        out[f"calibrate_{case}_period_p99_ms"] = _pct(p, 99)
        out[f"calibrate_{case}_period_max_ms"] = _pct(p, 100)
        out[f"calibrate_{case}_commands"] = len(p) + rounds
    out["calibrate_load_average_1m"] = round(os.getloadavg()[0], 2)
    return out


def _console_run(argv: list[str]) -> None:
    """In the tmux pane: the console, started at once, over the bench's drive; writes
    what it saw to the result file and exits when the drive ends."""
    import functools
    import resource

    from vehicle.console import app as console_app
    from vehicle.console.app import CommandLineModel, ConsoleParts, DriveConsole
    from vehicle.console.loop_process import DriveRecipe, FigureBatch

    port, model, frames, rate_hz, out = (
        argv[0],
        argv[1],
        int(argv[2]),
        float(argv[3]),
        Path(argv[4]),
    )
    latencies: list[float] = []
    times: dict[str, float] = {}

    class BenchConsole(DriveConsole):
        CSS_PATH = str(Path(console_app.__file__).with_name("console.tcss"))

        def _on_batch(self, batch: FigureBatch) -> None:
            if "cpu" not in times:
                times["cpu"], times["wall"] = time.process_time(), time.monotonic()
            latencies.extend(ms for _f, _t, ms, _m, _e in batch.rows if ms is not None)
            super()._on_batch(batch)

        def on_drive_ended(self, message: Any) -> None:
            cpu, wall = time.process_time(), time.monotonic()
            super().on_drive_ended(message)
            for handle in self.loop_processes:
                handle.close()
            loop_cpu = resource.getrusage(resource.RUSAGE_CHILDREN)
            result = {
                "reason": message.reason,
                "ok": message.ok,
                "loop_ms": latencies,
                "console_cpu_s": cpu - times.get("cpu", cpu),
                "wall_s": wall - times.get("wall", wall),
                "loop_process_cpu_s": loop_cpu.ru_utime + loop_cpu.ru_stime,
            }
            atomic_write(out, json.dumps(result).encode())
            self.exit()

    from vehicle.files import atomic_write

    parts = ConsoleParts(
        recipe=DriveRecipe(functools.partial(open_bench_drive, port, model, frames, rate_hz)),
        max_speed_fraction=0.0,
        title="bench",
        initial_model=CommandLineModel(Path(model).name),
    )
    try:
        # started as a person would: once the console is up and drawn (Enter)
        app = BenchConsole(parts)
        app.call_later(lambda: app.set_timer(SETTLE_S, app.action_start))
        app.run()
    finally:
        if not out.exists():  # the console failed: say so rather than keep the bench waiting
            atomic_write(out, json.dumps({"ok": False, "reason": "the console failed"}).encode())


def _console_figures(
    policy: Any, model: str, frames: int, rounds: int, rate_hz: float, log: Any
) -> dict[str, Any]:
    """Headless and console rounds, alternating; pooled percentiles and CPU shares."""
    headless: list[float] = []
    console: list[float] = []
    rows = []
    cpu = {"console": 0.0, "loop_process": 0.0, "headless": 0.0}
    wall = {"console": 0.0, "headless": 0.0}
    for r in range(rounds):
        h_ms, h_cpu, h_wall = _headless_loop(policy, frames, rate_hz)
        c = _console_loop(model, frames, rate_hz)
        if not c.get("loop_ms"):
            raise RuntimeError(f"the console's drive did not run: {c['reason']}")
        headless += h_ms
        console += c["loop_ms"]
        cpu["headless"] += h_cpu
        wall["headless"] += h_wall
        cpu["console"] += c["console_cpu_s"]
        cpu["loop_process"] += c["loop_process_cpu_s"]
        wall["console"] += c["wall_s"]
        row = {
            "round": r + 1,
            "headless_p50_ms": _pct(h_ms, 50),
            "headless_p99_ms": _pct(h_ms, 99),
            "console_p50_ms": _pct(c["loop_ms"], 50),
            "console_p99_ms": _pct(c["loop_ms"], 99),
            "load_average_1m": round(os.getloadavg()[0], 2),
        }
        if not c["ok"]:  # e.g. the simulated board starved on a crowded CPU: said, kept
            row["console_fault"] = c["reason"]
        rows.append(row)
        log(f"  round {r + 1}: " + ", ".join(f"{k} {v}" for k, v in row.items() if k != "round"))
    p99_h, p99_c = _pct(headless, 99), _pct(console, 99)
    return {
        "console_rounds": rows,
        "headless_p50_ms": _pct(headless, 50),
        "headless_p99_ms": p99_h,
        "console_p50_ms": _pct(console, 50),
        "console_p99_ms": p99_c,
        "console_vs_headless_p99": round(p99_c / p99_h, 3),
        "console_frames": len(console),
        "console_cpu_share": round(cpu["console"] / max(wall["console"], 1e-9), 3),
        "loop_process_cpu_share": round(cpu["loop_process"] / max(wall["console"], 1e-9), 3),
        "headless_cpu_share": round(cpu["headless"] / max(wall["headless"], 1e-9), 3),
    }


def main(argv: list[str]) -> int:
    args = _parser().parse_args(argv)
    from vehicle.camera import Camera
    from vehicle.drive import Drive, DriveConfig, mapping_for
    from vehicle.firmware import protocol as P
    from vehicle.inference import Policy, load_tflite_policy
    from vehicle.link import Link, LinkConfig
    from vehicle.observation import preprocess
    from vehicle.pulses import PulseCalibration, action_pulses

    policy: Policy = load_tflite_policy(args.model) if args.model else Policy.load(_bench_model())
    log = (lambda *a: None) if args.json else (lambda *a: print(*a, flush=True))
    log(
        f"model {policy.describe()['path']} ({policy.backend}, input {policy.describe()['input_dtype']})"
    )

    # inference alone
    obs = preprocess(_BenchCamera().images[0])
    for _ in range(50):
        policy.infer(obs)
    infer = []
    for _ in range(max(300, args.frames // 2)):
        t = time.perf_counter()
        policy.infer(obs)
        infer.append((time.perf_counter() - t) * 1000)

    # protocol rates
    enc = P.Encoder()
    n = 20000
    t = time.perf_counter()
    for i in range(n):
        enc.command(i, 1450 + (i & 63), 1400)
    encode_rate = n / (time.perf_counter() - t)
    stream = b"".join(
        P.encode(P.MSG_COMMAND, i & 255, bytes([i & 255, 5, 0x60, 5])) for i in range(n)
    )
    parser = P.Parser(P.TO_CONTROLLER)
    t = time.perf_counter()
    parser.feed_into(stream, len(stream), lambda p, m: None)
    dt = time.perf_counter() - t
    assert parser.good == n

    # the firmware in its own process, on a pty
    with _firmware() as port:
        cal = PulseCalibration()
        mapping = mapping_for(policy)
        with Link(LinkConfig(port=port)) as link:
            # reference: the bare sequence, same frames, same model, same pty
            ref = []
            cam = _BenchCamera()
            for _ in range(args.frames):
                frame = cam.read()
                o = preprocess(frame.image)
                steer, speed, _ = policy.act(o)
                su, tu, _, _ = action_pulses(mapping, cal, steer, speed, max_speed_fraction=0.0)
                nbytes = enc.command(1, su, tu)
                os.write(link._ser.fileno(), bytes(enc.out[:nbytes]))
                ref.append((time.monotonic() - frame.timestamp_s) * 1000)
            camera: Camera = _BenchCamera()  # type: ignore[assignment]
            drive = Drive(
                camera,
                policy,
                link,
                cal,
                mapping,
                DriveConfig(
                    max_speed_fraction=0.0,  # the simulated car stands still
                    paced=False,
                    max_frames=args.frames,
                    handle_signals=False,
                    allow_rate_mismatch=True,
                    rate_hz=policy.metadata.control_rate_hz,
                ),
            )
            result = drive.run()
    s = result.summary()
    out = {
        "model": policy.describe()["path"],
        "backend": policy.backend,
        "input_dtype": policy.describe()["input_dtype"],
        "frames": s["frames"],
        "loop_p50_ms": s["loop_p50_ms"],
        "loop_p99_ms": s["loop_p99_ms"],
        "capture_p50_ms": s["capture_p50_ms"],
        "preprocess_p50_ms": s["preprocess_p50_ms"],
        "infer_in_loop_p50_ms": s["infer_p50_ms"],
        "command_p50_ms": s["command_p50_ms"],
        "infer_p50_ms": _pct(infer, 50),
        "infer_p99_ms": _pct(infer, 99),
        "reference_p50_ms": _pct(ref, 50),
        "reference_p99_ms": _pct(ref, 99),
        "loop_vs_reference_p50": round(s["loop_p50_ms"] / _pct(ref, 50), 3),
        "protocol_encode_frames_per_s": round(encode_rate),
        "protocol_parse_frames_per_s": round(n / dt),
        "protocol_parse_bytes_per_s": round(len(stream) / dt),
        "link_errors": s["link_errors"],
        "load_average_1m": round(os.getloadavg()[0], 2),
        "cpu_count": os.cpu_count(),
    }
    if args.console:
        model_file = str(policy.describe()["path"])
        figures = _console_figures(
            policy, model_file, args.frames, args.rounds, args.console_rate, log
        )
        out.update({"console_rate_hz": args.console_rate, **figures})
    if args.calibrate:
        out.update(_calibrate_figures(args.calibrate_s, args.preview_fps, args.rounds, log))
    if args.console or args.calibrate:
        out["load_average_1m_end"] = round(os.getloadavg()[0], 2)
    if args.json:
        print(json.dumps(out, indent=2))
    else:
        for k, v in out.items():
            print(f"  {k:30s} {v}")
    return 0 if s["link_errors"] == 0 else 1


if __name__ == "__main__":
    if sys.argv[1:2] == ["--console-run"]:
        _console_run(sys.argv[2:])
    elif sys.argv[1:2] == ["--calibrate-run"]:
        _calibrate_run(sys.argv[2:])
