"""`racer bench sim`: simulator env steps per second on one core, against gymnasium's
CarRacing-v3 stepped on the same machine in the same run.

    racer bench sim [--json] [--seconds S] [--rounds N] [--batch N] [--track TRACK]

Each env first runs whole episodes until its randomization pools are full (the steady
state of a training run). Every figure is then measured in `rounds` interleaved windows
(openracer none, openracer standard, both batched, CarRacing) so that load from other
processes hits all of them alike; medians are reported. The process is pinned to one CPU
core and OpenCV to one thread, and rates are env steps per CPU-second of the process: on
a shared machine the wall clock also counts the time other processes hold the core,
which makes ratios swing by 2x between windows. Wall-clock rates and ratios are reported
beside them. Actions are random (sampled from each env's seeded action space) and
episodes are reset when they end, so reset and randomization costs are included.
"Batched" is a `gymnasium.vector.SyncVectorEnv` of `--batch` envs in this one process; its
figure counts env steps (vector steps x batch).

`--json` prints at least steps_per_s_none, steps_per_s_standard, carracing_steps_per_s,
ratio_none and ratio_standard.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from collections.abc import Callable
from typing import Any


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="racer bench sim",
        description="Simulator env steps/s on one core vs gymnasium CarRacing-v3, same run.",
    )
    p.add_argument("--json", action="store_true", help="print the figures as JSON")
    p.add_argument("--seconds", type=float, default=2.0, help="CPU seconds per window (2)")
    p.add_argument("--rounds", type=int, default=5, help="interleaved windows per figure (5)")
    p.add_argument("--batch", type=int, default=8, help="envs in the batched figure (8)")
    p.add_argument("--track", default="reinvent_like", help="track (default reinvent_like)")
    return p


def _pin_one_core() -> tuple[int | None, set[int] | None]:
    """Pin this process to one core; returns (core, previous affinity)."""
    try:
        before = set(os.sched_getaffinity(0))
        core = max(before)
        os.sched_setaffinity(0, {core})
        return core, before
    except (AttributeError, OSError):
        return None, None


def _warm_up(env: Any, episodes: int) -> None:
    """Run whole episodes first, so the texture and camera pools of the randomizer are full
    (a one-time cost of the first minutes of a training run, not its steady state)."""
    done = 0
    while done < episodes:
        _, _, term, trunc, _ = env.step(env.action_space.sample())
        if term or trunc:
            env.reset()
            done += 1


def _pool_size(env: Any) -> int:
    return int(env.unwrapped.randomization.texture_pool_size)


def _window(step: Callable[[], int], seconds: float) -> tuple[float, float]:
    """Run `step` (returns env steps done) for `seconds` of CPU time; env steps per
    CPU-second and per wall-clock second."""
    for _ in range(20):
        step()
    n = 0
    c0, t0 = time.process_time(), time.perf_counter()
    while True:
        n += step()
        cpu = time.process_time() - c0
        if cpu >= seconds:
            return n / cpu, n / (time.perf_counter() - t0)


def _single(env: Any) -> Callable[[], int]:
    def step() -> int:
        _, _, term, trunc, _ = env.step(env.action_space.sample())
        if term or trunc:
            env.reset()
        return 1

    return step


def _batched(envs: Any) -> Callable[[], int]:
    def step() -> int:
        envs.step(envs.action_space.sample())
        return envs.num_envs

    return step


def main(argv: list[str]) -> int:
    args = _parser().parse_args(argv)
    if args.seconds <= 0 or args.rounds < 1 or args.batch < 1:
        print(
            "racer bench sim: error: --seconds, --rounds and --batch must be positive",
            file=sys.stderr,
        )
        return 2
    core, before = _pin_one_core()
    try:
        return _run(args, core)
    finally:
        if before:
            os.sched_setaffinity(0, before)


def _run(args: argparse.Namespace, core: int | None) -> int:
    import cv2
    import gymnasium as gym

    import sim2real  # noqa: F401  (registers openracer/Race-v0)

    cv2.setNumThreads(1)
    from rich.progress import Progress

    def make(preset: str) -> Any:
        env = gym.make("openracer/Race-v0", track=args.track, randomize=preset)
        env.reset(seed=0)
        env.action_space.seed(0)
        _warm_up(env, 2 * _pool_size(env) + 2)
        return env

    def make_vec(preset: str) -> Any:
        envs = gym.vector.SyncVectorEnv(
            [lambda: gym.make("openracer/Race-v0", track=args.track, randomize=preset)]
            * args.batch,
            autoreset_mode=gym.vector.AutoresetMode.NEXT_STEP,
        )
        envs.reset(seed=0)
        envs.action_space.seed(0)
        for sub in envs.envs:
            sub.action_space.seed(0)
            _warm_up(sub, 2 * _pool_size(sub) + 2)
        envs.reset()  # no seed: a seeded reset would empty the pools again
        return envs

    car = gym.make("CarRacing-v3")
    car.reset(seed=0)
    car.action_space.seed(0)
    cases: dict[str, Callable[[], int]] = {
        "steps_per_s_none": _single(make("none")),
        "steps_per_s_standard": _single(make("standard")),
        "batched_steps_per_s_none": _batched(make_vec("none")),
        "batched_steps_per_s_standard": _batched(make_vec("standard")),
        "carracing_steps_per_s": _single(car),
    }
    samples: dict[str, list[float]] = {k: [] for k in cases}
    wall: dict[str, list[float]] = {k: [] for k in cases}
    with Progress(transient=True, console=None) as progress:
        task = progress.add_task("measuring", total=args.rounds * len(cases))
        for _ in range(args.rounds):
            for name, step in cases.items():
                progress.update(task, description=name)
                cpu_rate, wall_rate = _window(step, args.seconds)
                samples[name].append(cpu_rate)
                wall[name].append(wall_rate)
                progress.advance(task)
    fig: dict[str, Any] = {k: round(statistics.median(v), 1) for k, v in samples.items()}
    ref = fig["carracing_steps_per_s"]
    fig["ratio_none"] = round(fig["steps_per_s_none"] / ref, 2)
    fig["ratio_standard"] = round(fig["steps_per_s_standard"] / ref, 2)
    fig["ratio_batched_none"] = round(fig["batched_steps_per_s_none"] / ref, 2)
    fig["ratio_batched_standard"] = round(fig["batched_steps_per_s_standard"] / ref, 2)
    fig["floor_ratio_none"] = 40.0
    fig["floor_ratio_standard"] = 12.0
    fig["meets_floor"] = fig["ratio_none"] >= 40.0 and fig["ratio_standard"] >= 12.0
    fig["samples"] = {k: [round(x, 1) for x in v] for k, v in samples.items()}
    fig["wall_clock_steps_per_s"] = {k: round(statistics.median(v), 1) for k, v in wall.items()}
    wall_ref = fig["wall_clock_steps_per_s"]["carracing_steps_per_s"]
    fig["wall_clock_ratio_none"] = round(
        fig["wall_clock_steps_per_s"]["steps_per_s_none"] / wall_ref, 2
    )
    fig["wall_clock_ratio_standard"] = round(
        fig["wall_clock_steps_per_s"]["steps_per_s_standard"] / wall_ref, 2
    )
    fig["setup"] = {
        "track": args.track,
        "seconds_per_window": args.seconds,
        "rounds": args.rounds,
        "batch": args.batch,
        "pinned_core": core,
        "load_average": [round(x, 2) for x in os.getloadavg()],
        "policy": "random actions, episodes reset when they end",
        "clock": "steps per CPU-second of this process (pinned to one core); wall-clock "
        "figures beside them",
    }
    if args.json:
        print(json.dumps(fig, indent=2))
        return 0
    print(
        f"openracer/Race-v0 on one core ({args.track}), env steps per CPU-second, "
        f"medians of {args.rounds} windows:"
    )
    for key, label in (
        ("steps_per_s_none", "single env, randomize none"),
        ("steps_per_s_standard", "single env, randomize standard"),
        ("batched_steps_per_s_none", f"batched x{args.batch}, none"),
        ("batched_steps_per_s_standard", f"batched x{args.batch}, standard"),
    ):
        ratio = fig[key] / ref
        print(f"  {label:<34} {fig[key]:>9.1f} steps/s  {ratio:6.1f}x CarRacing")
    print(f"  {'gymnasium CarRacing-v3':<34} {ref:>9.1f} steps/s")
    print(
        f"wall clock: none {fig['wall_clock_ratio_none']:.1f}x, "
        f"standard {fig['wall_clock_ratio_standard']:.1f}x CarRacing"
    )
    print(
        f"floor: 40x (none) and 12x (standard): "
        f"{'met' if fig['meets_floor'] else 'NOT met'}; load average {fig['setup']['load_average']}"
    )
    return 0
