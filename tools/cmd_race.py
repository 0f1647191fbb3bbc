"""`racer race BUNDLE... --track TRACK --laps N`: a time-trial race of several models with a leaderboard.

Every model drives the same laps from the start line on the same seeded conditions, as
in DeepRacer's virtual circuit. The leaderboard (best lap, total time, off-tracks,
completion) is shown in the terminal and written to OUT/race.html with an MP4 of the
winner's best lap; `--json` prints it as JSON.

    racer race a.bundle b.bundle runs/c --track reinvent_like --laps 3
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="racer race",
        description=(__doc__ or "").split("\n\n", 1)[1],
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("models", nargs="+", help="model bundles, .tflite files or run folders")
    p.add_argument("--track", required=True, help="catalogue name or .npy route file")
    p.add_argument("--laps", type=int, default=3, help="laps per model (default 3)")
    p.add_argument(
        "--randomize",
        default="none",
        choices=["none", "light", "standard", "heavy"],
        help="conditions (default none)",
    )
    p.add_argument("--seed", type=int, default=0, help="seed of the conditions (same for all)")
    p.add_argument("--out", default="race", help="folder for race.html, race.json, the MP4")
    p.add_argument("--max-steps", type=int, default=3000, help="step limit per lap")
    p.add_argument("--no-video", action="store_true", help="skip the winner's MP4")
    p.add_argument("--json", action="store_true", help="print the leaderboard as JSON")
    return p


def main(argv: list[str]) -> int:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    args = build_parser().parse_args(argv)
    from rich.console import Console
    from rich.table import Table

    from tools.race import run_race

    console = Console(stderr=args.json)
    result = run_race(
        args.models,
        args.track,
        args.laps,
        Path(args.out),
        seed=args.seed,
        randomize=args.randomize,
        max_steps=args.max_steps,
        video=not args.no_video,
        console=console,
    )
    if args.json:
        json.dump(result, sys.stdout, indent=2)
        sys.stdout.write("\n")
        return 0
    table = Table(title=f"Race on {result['track']}: {result['laps']} laps")
    for col in ("#", "model", "laps", "best lap", "total time", "off-tracks", "completion"):
        table.add_column(col, justify="right" if col not in ("model",) else "left")
    for e in result["leaderboard"]:
        table.add_row(
            str(e["position"]),
            e["name"],
            f"{e['laps_completed']}/{e['laps']}",
            "–" if e["best_lap_s"] is None else f"{e['best_lap_s']:.2f} s",
            "–" if e["total_time_s"] is None else f"{e['total_time_s']:.2f} s",
            str(e["off_tracks"]),
            f"{e['completion_pct']:.1f} %",
        )
    console.print(table)
    if result.get("limit_lap_s"):
        console.print(f"limit lap time on this track: {result['limit_lap_s']:.2f} s")
    console.print(f"winner: [bold]{result['winner']}[/bold]")
    if "winner_video" in result:
        console.print(f"winner's best lap: {result['winner_video']['path']}")
    console.print(f"report: [bold]{result['report']}[/bold]")
    return 0
