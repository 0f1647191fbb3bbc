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
  by the firmware's parser under CPython.

The model: `--model` (a .tflite, bundle or store name), else the DeepRacer shallow CNN
with fresh weights converted to full-integer int8 (needs TensorFlow once; cached under
~/.cache/openracer/bench). Timing does not depend on the weights.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="racer bench car", description=__doc__.split("\n\n")[0])
    p.add_argument("--model", help="model to time (.tflite, bundle, or store name)")
    p.add_argument("--frames", type=int, default=1500, help="loop iterations to time")
    p.add_argument("--json", action="store_true", help="print the figures as JSON")
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
    finally:
        if proc.stdin:
            proc.stdin.close()
        proc.wait(timeout=10)
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
    if args.json:
        print(json.dumps(out, indent=2))
    else:
        for k, v in out.items():
            print(f"  {k:30s} {v}")
    return 0 if s["link_errors"] == 0 else 1
