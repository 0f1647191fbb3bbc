"""`racer bench export RUN [RUN ...]`: does int8 drive like float? For each trained run,
the int8 export's own judgement (`trainer.export.export_run`: on-policy agreement, lap
parity against the float model with its float32 control, the quantization method it
needed), the size ratio to float32, and the inference time of the int8 and float32 models
through ai-edge-litert on this CPU (one thread, the car's `vehicle.inference.Policy`,
alternating rounds so both see the same machine load).

Bundles go to a temporary folder (`--out DIR` keeps them); nothing is written into the runs.
Give at least three kinds of run to cover the contract: the demo recipe, a fast-laps run
and a continuous-action one (e.g. SAC), and a discrete one when there is one.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from tools.bench_train import _cpu_times, steal_pct


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="racer bench export", description=__doc__.split("\n\n")[0])
    p.add_argument(
        "runs", nargs="*", metavar="RUN", help="run directories written by `racer train`"
    )
    p.add_argument("--checkpoint", default="best", help="best, last or an iteration N")
    p.add_argument("--laps", type=int, default=10, help="judging laps per model (at least 10)")
    p.add_argument("--seed", type=int, default=0, help="simulator seed of the judging laps")
    p.add_argument("--invokes", type=int, default=300, help="timed inferences per model and round")
    p.add_argument("--rounds", type=int, default=5, help="alternating timing rounds")
    p.add_argument("--out", help="keep the bundles in this folder")
    p.add_argument("--json", action="store_true", help="print JSON")
    return p


def latency_us(
    int8_bytes: bytes, float32_bytes: bytes, metadata: Any, invokes: int, rounds: int
) -> dict[str, Any]:
    """p50/p99 microseconds per inference of both models through ai-edge-litert, one
    thread, on seeded random frames (the kernels' cost does not depend on the pixels),
    in alternating rounds."""
    from vehicle.inference import Policy

    rng = np.random.default_rng(0)
    frames = rng.integers(0, 256, size=(64, 120, 160, 1), dtype=np.uint8)
    models = {
        "int8": Policy.from_bytes(int8_bytes, metadata, backend="ai_edge_litert"),
        "float32": Policy.from_bytes(float32_bytes, metadata, backend="ai_edge_litert"),
    }
    times: dict[str, list[float]] = {k: [] for k in models}
    for _ in range(rounds):
        for label, policy in models.items():
            for i in range(invokes):
                t = time.perf_counter()
                policy.infer(frames[i % len(frames)])
                times[label].append(time.perf_counter() - t)
    out: dict[str, Any] = {"backend": "ai_edge_litert", "threads": 1}
    for label, samples in times.items():
        arr = np.asarray(samples) * 1e6
        out[f"{label}_p50_us"] = round(float(np.percentile(arr, 50)), 1)
        out[f"{label}_p99_us"] = round(float(np.percentile(arr, 99)), 1)
    out["int8_over_float32_p50"] = round(out["int8_p50_us"] / out["float32_p50_us"], 3)
    return out


def bench_run(run: str, args: argparse.Namespace, out_dir: Path) -> dict[str, Any]:
    """One run's row: the export's figures, whether it passed, and the latencies."""
    from trainer.checkpoint import RunDir
    from trainer.export import ExportConfig, export_run
    from vehicle.metadata import load_metadata

    start = time.time()
    name = Path(run).resolve().name
    result = export_run(
        ExportConfig(
            run=run,
            checkpoint=args.checkpoint,
            format="int8",
            out=str(out_dir / f"{name}-int8.tar.gz"),
            laps=args.laps,
            seed=args.seed,
            allow_parity_loss=True,  # the benchmark reports a failure rather than stopping
        )
    )
    par = result.parity
    config = json.loads(RunDir(run).config.read_text(encoding="utf-8"))
    metadata = load_metadata(Path(run) / "model" / "model_metadata.json")
    assert result.model_bytes is not None and result.float32_bytes is not None
    return {
        "run": str(Path(run).resolve()),
        "recipe": config.get("recipe"),
        "tracks": config.get("track"),
        "algorithm": metadata.training_algorithm,
        "action_space": metadata.action_space.kind,
        "network": metadata.neural_network,
        "checkpoint": result.source["iteration"],
        "passed": result.passed,
        "method": par["method"],
        "quantization_recipe": result.quantization.get("recipe"),
        "float_ops": result.quantization.get("float_ops"),
        "on_policy_agreement": par["agreement"],
        "on_policy_frames": par["frames"],
        "held_out_agreement": par["held_out"]["agreement"],
        "lap_parity": par["lap_parity"],
        "laps": {k: result.laps[k] for k in ("float", "control", "tflite")},
        "size_bytes": result.size_bytes,
        "float32_size_bytes": result.float32_size_bytes,
        "size_ratio": round(result.size_bytes / result.float32_size_bytes, 4),
        "latency": latency_us(
            result.model_bytes, result.float32_bytes, metadata, args.invokes, args.rounds
        ),
        "export_s": round(time.time() - start, 1),
    }


def main(argv: list[str]) -> int:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    args = build_parser().parse_args(argv)
    from trainer.errors import ExportError

    if not args.runs:
        raise ExportError(
            "racer bench export: no runs given; name the trained runs to judge, e.g. "
            "`racer bench export runs/demo runs/fast runs/sac --json` (at least three kinds: "
            "the demo recipe, a fast-laps run, a continuous-action run)"
        )
    for run in args.runs:
        if not (Path(run) / "config.json").is_file():
            raise ExportError(
                f"racer bench export: {run} is not a run directory (no config.json); give "
                "folders written by `racer train --out`"
            )
    out_dir = Path(args.out) if args.out else Path(tempfile.mkdtemp(prefix="racer-bench-export-"))
    out_dir.mkdir(parents=True, exist_ok=True)
    load = [os.getloadavg()[0]]
    cpu_start = _cpu_times()
    rows = []
    for run in args.runs:
        rows.append(bench_run(run, args, out_dir))
        load.append(os.getloadavg()[0])
    summary = {
        "runs": rows,
        "all_passed": all(r["passed"] for r in rows),
        "laps": args.laps,
        "seed": args.seed,
        "bundles": str(out_dir),
        "load_average_1min": [round(x, 2) for x in load],
        "cpu_count": os.cpu_count(),
        "cpu_steal_pct": steal_pct(cpu_start, _cpu_times()),
    }
    if args.json:
        print(json.dumps(summary, indent=2))
        return 0
    for r in rows:
        lp = r["lap_parity"]
        diff = lp["lap_time_diff"]
        lat = r["latency"]
        print(
            f"{'ok    ' if r['passed'] else 'FAILED'} {Path(r['run']).name} ({r['recipe']}, "
            f"{r['algorithm']}, {r['action_space']}): agreement "
            f"{100 * r['on_policy_agreement']:.2f}% of {r['on_policy_frames']} on-policy frames; "
            f"laps {lp['tflite_laps']} vs float {lp['float_laps']} of "
            f"{lp['laps'] - len(lp['undetermined'])} determined"
            + (f", mean lap {100 * diff:+.2f}%" if diff is not None else "")
            + f"; {r['method']}, {r['quantization_recipe']}; size "
            f"{100 * r['size_ratio']:.1f}% of float32; p50 "
            f"{lat['int8_p50_us']} us int8 vs {lat['float32_p50_us']} us float32"
        )
    print(
        f"load average {summary['load_average_1min']}, CPU steal {summary['cpu_steal_pct']} %; "
        f"bundles in {out_dir}"
    )
    return 0
