"""`racer bench race`: lap times that race. Train for at most `--minutes` (30) with a
recipe, then drive the best checkpoint for `--laps` (10) evaluation laps from the start
line under `standard` randomization, and compare the mean lap with the track's racing-line
limit (`limit_ratio` = mean lap / limit lap; world-class DeepRacer pace on the re:Invent
2018 track is about 1.35, see ../shared/reference/learning-anchors.md).

Default track: DeepRacer's own `reinvent_base.npy` from ../shared/data/deepracer-tracks
(the benchmark trains on it, so it says nothing about unseen tracks); `--track` takes any
catalogue name or .npy file. Default recipe: `fast_laps` (racing-line imitation, DAgger,
then PPO; `trainer/recipes`). The policy sees only the camera frame, as DeepRacer's do.

Learning results vary by seed: run it for several (`--seed`), and read the load average and
the CPU time the hypervisor gave to other guests (`cpu_steal_pct`), printed beside the
figures, before comparing wall-clock budgets between runs.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path
from typing import Any

from tools.bench_train import _cpu_times, steal_pct

DEFAULT_TRACK = (
    Path(__file__).resolve().parents[1] / ".." / "shared" / "data" / "deepracer-tracks"
).resolve() / "reinvent_base.npy"
GOAL_RATIO = 1.35
AIM_RATIO = 1.2


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="racer bench race", description=__doc__.split("\n\n")[0])
    p.add_argument("--track", default=str(DEFAULT_TRACK), help="catalogue name or .npy file")
    p.add_argument("--recipe", default="fast_laps", help="trainer/recipes name")
    p.add_argument("--minutes", type=float, default=30.0, help="training budget")
    p.add_argument("--max-iterations", type=int, default=0, help="PPO iterations cap (0: none)")
    p.add_argument("--randomize", default="standard")
    p.add_argument("--laps", type=int, default=10)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--out", default=None, help="run directory (default: a temporary one)")
    p.add_argument("--json", action="store_true")
    return p


def main(argv: list[str]) -> int:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    args = build_parser().parse_args(argv)
    from trainer import recipes
    from trainer.config import TrainConfig, load_hyperparameters
    from trainer.errors import TrainConfigError
    from trainer.evaluate import evaluate
    from trainer.ppo import train
    from trainer.progress import ProgressDisplay
    from trainer.targets import policy_from_target
    from vehicle.metadata import load_metadata

    if args.track.endswith(".npy") and not Path(args.track).is_file():
        raise TrainConfigError(
            f"racer bench race: track file {args.track} not found; the default is DeepRacer's "
            "reinvent_base.npy in ../shared/data/deepracer-tracks beside the checkout, or "
            "give --track NAME_OR_FILE"
        )
    recipe = recipes.get(args.recipe)
    start = time.time()
    load = [os.getloadavg()]
    cpu_start = _cpu_times()
    out = args.out or str(Path(tempfile.mkdtemp(prefix="racer-bench-race-")) / "run")
    config = TrainConfig(
        **{
            **recipe.train_options(),
            "out": out,
            "track": (args.track,),
            "minutes": args.minutes,
            "max_iterations": args.max_iterations,
            "randomize": args.randomize,
            "seed": args.seed,
            "workers": args.workers,
        }
    )
    hp = load_hyperparameters(recipe.hyperparameters)
    metadata = load_metadata(recipe.metadata)
    display = ProgressDisplay(f"racer bench race -> {out}", config.minutes * 60, quiet=args.json)
    with display:
        result = train(config, hp, metadata, display=display)
    train_s = time.time() - start
    load.append(os.getloadavg())
    if result.best is None:
        raise TrainConfigError(
            f"racer bench race: the run saved no checkpoint ({result.stop_reason})"
        )
    policy_fn, metadata, info, _ = policy_from_target(out, str(result.best))
    # Seed 1000+: conditions the in-training evaluation (seed 0..) never saw.
    report = evaluate(
        policy_fn, args.track, args.laps, args.randomize, metadata=metadata, seed=args.seed + 1000
    ).to_json()
    load.append(os.getloadavg())
    summary: dict[str, Any] = {
        "track": args.track,
        "recipe": args.recipe,
        "randomize": args.randomize,
        "seed": args.seed,
        "laps": args.laps,
        "laps_completed": report["laps_completed"],
        "mean_lap_s": report["mean_lap_s"],
        "best_lap_s": report["best_lap_s"],
        "limit_lap_time_s": report["limit_lap_time_s"],
        "limit_ratio": report["limit_ratio"],
        "goal_ratio": GOAL_RATIO,
        "aim_ratio": AIM_RATIO,
        "checkpoint_iteration": result.best,
        "iterations": result.iterations,
        "env_steps": result.env_steps,
        "train_s": round(train_s, 1),
        "elapsed_s": round(time.time() - start, 1),
        "stop_reason": result.stop_reason,
        "run": out,
        "load_average_1min": [round(x[0], 2) for x in load],
        "cpu_count": os.cpu_count(),
        "cpu_steal_pct": steal_pct(cpu_start, _cpu_times()),
    }
    if args.json:
        print(json.dumps(summary, indent=2))
    else:
        print(
            f"{summary['laps_completed']}/{args.laps} laps, mean {summary['mean_lap_s']} s, best "
            f"{summary['best_lap_s']} s, limit {summary['limit_lap_time_s']} s, limit_ratio "
            f"{summary['limit_ratio']} (goal {GOAL_RATIO}, aim {AIM_RATIO}); checkpoint "
            f"{result.best} of {result.iterations} iterations, {summary['train_s']} s training"
        )
        print(
            f"load average during the run: {summary['load_average_1min']}; CPU time taken "
            f"by other guests of this virtual machine: {summary['cpu_steal_pct']} %"
        )
    return 0
