"""`racer eval TARGET`: a time trial from the start line (trainer.evaluate.evaluate).

TARGET is a run directory (its best checkpoint, or `--checkpoint last|N`), a model bundle
written by `racer export`, or a `.tflite` file with `model_metadata.json` beside it. Runs
and bundles go through the same observation and action decoding the car uses: the
simulator renders through `vehicle.observation.preprocess`, TFLite models run in
`vehicle.inference.Policy` (argmax for discrete spaces, clip-and-rescale for continuous).

    racer eval runs/a --track reinvent_like --laps 10 --randomize standard --json
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="racer eval", description="Time-trial evaluation of a run or a model bundle."
    )
    p.add_argument("target", help="run directory, model bundle, or .tflite file")
    p.add_argument(
        "--track", default=None, help="catalogue name or .npy (default: the run's first)"
    )
    p.add_argument("--laps", type=int, default=3, help="laps (trials from the start line)")
    p.add_argument(
        "--randomize", default="none", help="none, light, standard or heavy (default none)"
    )
    p.add_argument("--checkpoint", default="best", help="run targets: best, last or N")
    p.add_argument("--seed", type=int, default=0, help="seed of the randomized conditions")
    p.add_argument("--reward", default=None, help="reward file for the simtrace (optional)")
    p.add_argument("--video", default=None, metavar="FILE.mp4", help="MP4 of the first lap")
    p.add_argument(
        "--logs",
        default=None,
        metavar="DIR",
        help="where evaluation simtraces go (default: the run directory; none for bundles; 'none' writes none)",
    )
    p.add_argument("--max-steps", type=int, default=3000, help="step limit per lap")
    p.add_argument("--env-id", default="openracer/Race-v0", help="Gymnasium environment id")
    p.add_argument("--json", action="store_true", help="print the report as JSON")
    from tools.sweep import add_arguments as add_sweep_arguments  # racer eval --sweep

    add_sweep_arguments(p)
    return p


def main(argv: list[str]) -> int:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    args = build_parser().parse_args(argv)
    from trainer.errors import EvaluationError
    from trainer.evaluate import evaluate

    if args.laps < 1:
        raise EvaluationError(f"--laps {args.laps} must be at least 1")
    if args.randomize not in ("none", "light", "standard", "heavy"):
        raise EvaluationError(
            f"--randomize {args.randomize!r} is not one of none, light, standard, heavy"
        )
    from trainer.targets import policy_from_target

    policy_fn, metadata, info, run_dir = policy_from_target(args.target, args.checkpoint)
    track = args.track
    if track is None:
        if run_dir is None:
            raise EvaluationError("--track is required when TARGET is a bundle or .tflite file")
        from vehicle.files import read_json

        config = read_json(Path(run_dir) / "config.json", what="run config", error=EvaluationError)
        track = config["track"][0]
    if args.sweep:  # the robustness map (tools/sweep.py)
        from tools.sweep import main_from_eval

        return main_from_eval(args, policy_fn, metadata, track, run_dir)
    # `--logs none`: no simtrace at all (the default for bundles), not a folder named none
    logs = None if (args.logs or "").lower() == "none" else (args.logs or run_dir)
    report = evaluate(
        policy_fn,
        track,
        args.laps,
        args.randomize,
        metadata=metadata,
        reward_function=args.reward,
        seed=args.seed,
        max_episode_steps=args.max_steps,
        env_id=args.env_id,
        simtrace_dir=logs,
        video=args.video,
    )
    report.extra.update({"target": args.target, **info})
    out = report.to_json()
    if args.json:
        print(json.dumps(out, indent=2))
        return 0
    print(f"{args.target} on {out['track']} ({args.randomize} randomization), {args.laps} laps")
    for lap in out["per_lap"]:
        print(
            f"  lap {lap['lap'] + 1}: {'done' if lap['completed'] else 'DNF '} "
            f"{lap['lap_time_s']:7.2f} s  {lap['completion_pct']:6.1f} %  "
            f"off-track {lap['off_track']}  ({lap['status']})"
        )
    best = out["best_lap_s"]
    print(
        f"laps completed {out['laps_completed']}/{out['laps']}, completion "
        f"{out['completion_pct']:.1f} %, mean lap "
        f"{out['mean_lap_s'] if out['mean_lap_s'] is not None else '-'} s, best "
        f"{best if best is not None else '-'} s, mean speed {out['mean_speed_mps']} m/s, "
        f"limit {out['limit_lap_time_s'] and round(out['limit_lap_time_s'], 2)} s, "
        f"ratio {out['limit_ratio'] if out['limit_ratio'] is not None else '-'}"
    )
    return 0
