"""`racer bench sim|train|race|car|scale|export`: the benchmarks behind every speed and learning figure.

Each benchmark lives in its own module (`tools/bench_<name>.py`, `main(argv) -> int`) and
reports ratios against a reference measured in the same run, because this machine is
shared and noisy.
"""

from __future__ import annotations

import importlib
import sys

BENCHMARKS = {
    "sim": ("tools.bench_sim", "simulator steps/s vs gymnasium CarRacing-v3"),
    "train": ("tools.bench_train", "PPO wall-clock time to a model that laps"),
    "race": ("tools.bench_race", "lap time vs the racing-line limit after <= 30 min training"),
    "car": ("tools.bench_car", "car loop latency, inference time, protocol rates"),
    "scale": ("tools.bench_scale", "simulator workers: local pool vs Ray, 1/2/4 workers"),
    "export": ("tools.bench_export", "int8 vs float: on-policy agreement, lap parity, size, speed"),
}


def main(argv: list[str]) -> int:
    if not argv or argv[0] in ("-h", "--help"):
        print("usage: racer bench {" + ",".join(BENCHMARKS) + "} [--json] [...]\n")
        for name, (_, help_) in BENCHMARKS.items():
            print(f"  {name:<6} {help_}")
        return 0
    name = argv[0]
    if name not in BENCHMARKS:
        print(
            f"racer bench: error: unknown benchmark {name!r}; choose one of {list(BENCHMARKS)}",
            file=sys.stderr,
        )
        return 2
    return int(importlib.import_module(BENCHMARKS[name][0]).main(argv[1:]) or 0)
