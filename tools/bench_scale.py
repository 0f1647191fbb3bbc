"""`racer bench scale`: simulator workers, the local pool against Ray on this machine.

    racer bench scale [--json] [--workers 1,2,4] [--episodes 20] [--rounds 3]
                      [--track reinvent_like] [--randomize standard] [--seed 0]

For each worker count, the local pool (`trainer.workers.make_pool`: this process for 1,
spawned processes otherwise) and a `trainer.ray_workers.RayPool` on a single-machine Ray
started here (as many CPUs as the largest worker count) play the same training
iterations: `--episodes` whole episodes (DeepRacer's `num_episodes_between_training`)
with the policy of a fresh learner, whose weights change every round (so Ray puts them
into its object store every iteration, as in training). Rounds alternate local and Ray so
that load from other processes hits both alike; medians are reported. Both pools play the
same episodes (same seeds), so their steps match and the figures compare like with like.

Reported per worker count: env steps/s and seconds per iteration (the rollout, plus the
learner's update measured once on the same episodes: it runs in the driver either way),
and Ray's overhead, Ray's rollout time over the local pool's minus 1 (goal <= 10 %).
Worker start-up is measured apart (once per run, not per iteration).

From the one-worker rate r (steps/s per worker), the steps per iteration S and the
learner's update time U, the `on_paper` figures say where more machines stop helping:
a synchronous iteration takes S / (W r) + U with W workers, so past W = S / (r U) the
rollout is already shorter than the update and each doubling of W saves less than a
quarter of the iteration; and no more than `--episodes` workers can be busy at once
(whole episodes, one per worker). These are computed, not measured, and labelled so.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import statistics
import sys
import time
from typing import Any


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="racer bench scale",
        description="Simulator workers: env steps/s and s/iteration, local pool vs Ray.",
    )
    p.add_argument("--json", action="store_true", help="print the figures as JSON")
    p.add_argument(
        "--workers", default="1,2,4", help="worker counts, comma-separated (default 1,2,4)"
    )
    p.add_argument("--episodes", type=int, default=20, help="episodes per iteration (20)")
    p.add_argument("--rounds", type=int, default=3, help="timed iterations per pool (3)")
    p.add_argument("--track", default="reinvent_like", help="track (default reinvent_like)")
    p.add_argument("--randomize", default="standard", help="randomization preset (standard)")
    p.add_argument("--seed", type=int, default=0, help="seed of the episodes and weights (0)")
    return p


def _worker_counts(text: str) -> list[int]:
    from trainer.errors import TrainConfigError

    try:
        counts = [int(x) for x in text.split(",") if x.strip()]
    except ValueError as exc:
        raise TrainConfigError(
            f"--workers {text!r}: expected whole numbers separated by commas, e.g. 1,2,4"
        ) from exc
    if not counts or any(not 1 <= n <= 64 for n in counts):
        raise TrainConfigError(f"--workers {text!r}: each count must be from 1 to 64")
    return counts


def _perturbed(spec: Any, round_: int) -> Any:
    """The spec with its head's bias moved a little: new weights every round, as after an
    update (so Ray ships them again), the same for both pools."""
    weights = [w.copy() for w in spec.weights]
    weights[-1] = weights[-1] + 1e-4 * round_
    return dataclasses.replace(spec, weights=weights)


def _rollout(pool: Any, spec: Any, items: list[Any]) -> tuple[float, int, list[Any]]:
    t0 = time.perf_counter()
    episodes = pool.play_many(spec, items)
    seconds = time.perf_counter() - t0
    return seconds, sum(len(e.rewards) for e in episodes), episodes


def main(argv: list[str]) -> int:
    args = _parser().parse_args(argv)
    counts = _worker_counts(args.workers)
    from trainer.errors import TrainConfigError

    if not 1 <= args.episodes <= 1000 or not 1 <= args.rounds <= 100:
        raise TrainConfigError("--episodes must be 1-1000 and --rounds 1-100")
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import numpy as np

    from trainer.config import Hyperparameters, TrainConfig
    from trainer.episodes import EpisodeItem
    from trainer.evaluate import env_kwargs_for
    from trainer.ppo import Learner
    from trainer.ray_connection import disconnect, start_local
    from trainer.ray_workers import RayPool
    from trainer.trackset import resolve_track
    from trainer.workers import make_pool
    from vehicle.metadata import ModelMetadata

    config = TrainConfig(randomize=args.randomize, seed=args.seed)
    metadata, hp = ModelMetadata(), Hyperparameters()
    track = resolve_track(args.track)
    kwargs = env_kwargs_for(track, metadata, config.randomize)
    learner = Learner(metadata, hp, seed=args.seed)
    spec = learner.actor_spec()
    load = [os.getloadavg()]

    def items(round_: int) -> list[Any]:
        first = round_ * args.episodes
        return [EpisodeItem.training(args.seed, k) for k in range(first, first + args.episodes)]

    start_local(max(counts))
    rows = []
    update_s: list[float] = []
    try:
        for workers in counts:
            t0 = time.perf_counter()
            local = make_pool(config.env_id, kwargs, workers, 1, config.max_episode_steps)
            local_start_s = time.perf_counter() - t0
            t0 = time.perf_counter()
            on_ray = RayPool(config.env_id, kwargs, workers, config.max_episode_steps)
            ray_start_s = time.perf_counter() - t0
            try:
                # Warm-up: fills the randomizers' pools, compiles the policy in every worker.
                for pool in (local, on_ray):
                    pool.play_many(spec, items(10_000)[: max(workers, 2)])
                figures: dict[str, list[tuple[float, int]]] = {"local": [], "ray": []}
                for r in range(args.rounds):
                    round_spec = _perturbed(spec, r + 1)
                    order = [("local", local), ("ray", on_ray)]
                    for name, pool in order if r % 2 == 0 else order[::-1]:
                        seconds, steps, episodes = _rollout(pool, round_spec, items(r))
                        figures[name].append((seconds, steps))
                    if not update_s:
                        learner.learn(episodes, np.random.default_rng(0))  # traces the graph
                    if len(update_s) < args.rounds:
                        t0 = time.perf_counter()
                        learner.learn(episodes, np.random.default_rng(r))
                        update_s.append(time.perf_counter() - t0)
            finally:
                local.close()
                on_ray.close()
            rows.append((workers, figures, local_start_s, ray_start_s))
            load.append(os.getloadavg())
    finally:
        disconnect()

    update = statistics.median(update_s)
    out_rows = []
    for workers, figures, local_start_s, ray_start_s in rows:
        row: dict[str, Any] = {"workers": workers}
        for name in ("local", "ray"):
            seconds = statistics.median(s for s, _ in figures[name])
            played = statistics.median(n for _, n in figures[name])
            row[name] = {
                "env_steps_per_s": round(played / seconds, 1),
                "rollout_s": round(seconds, 3),
                "s_per_iteration": round(seconds + update, 3),
                "steps_per_iteration": played,
            }
        row["local"]["start_s"] = round(local_start_s, 2)
        row["ray"]["start_s"] = round(ray_start_s, 2)
        same = [a[1] == b[1] for a, b in zip(figures["local"], figures["ray"], strict=True)]
        row["same_steps"] = all(same)
        row["ray_overhead_pct"] = round(
            100 * (row["ray"]["rollout_s"] / row["local"]["rollout_s"] - 1), 1
        )
        out_rows.append(row)

    one = next((row for row in out_rows if row["workers"] == 1), out_rows[0])
    rate = one["ray"]["env_steps_per_s"] / one["workers"]
    steps = one["ray"]["steps_per_iteration"]
    knee = steps / (rate * update) if rate > 0 and update > 0 else None
    fig = {
        "rows": out_rows,
        "learner_update_s": round(update, 3),
        "on_paper": {
            "note": "computed from the measured rate and update time, not measured",
            "per_worker_steps_per_s": round(rate, 1),
            "steps_per_iteration": steps,
            "workers_where_rollout_equals_update": None if knee is None else round(knee, 1),
            "max_busy_workers": args.episodes,
            "iteration_s_floor": round(update, 3),
        },
        "max_ray_overhead_pct": max(row["ray_overhead_pct"] for row in out_rows),
        "goal_ray_overhead_pct": 10.0,
        "episodes_per_iteration": args.episodes,
        "rounds": args.rounds,
        "seed": args.seed,
        "track": args.track,
        "randomize": args.randomize,
        "cpu_count": os.cpu_count(),
        "load_average": [[round(x, 2) for x in la] for la in load],
    }
    if args.json:
        print(json.dumps(fig, indent=2))
    else:
        for row in out_rows:
            print(
                f"{row['workers']} workers: local {row['local']['env_steps_per_s']:.0f} "
                f"steps/s, {row['local']['s_per_iteration']:.2f} s/iteration; Ray "
                f"{row['ray']['env_steps_per_s']:.0f} steps/s, "
                f"{row['ray']['s_per_iteration']:.2f} s/iteration; overhead "
                f"{row['ray_overhead_pct']:+.1f} %",
                file=sys.stdout,
            )
        print(f"learner update {update:.2f} s/iteration; on paper: {fig['on_paper']}")
    return 0
