"""`racer analyze RUN --out DIR`: a report (HTML + PNG plots) of a training run or a car run log.

RUN is an openracer run folder, a deepracer-for-cloud model folder (single or multiple
workers), an AWS DeepRacer console export (unpacked, or the .tar.gz / .zip as downloaded),
or a car run log written by `racer drive` (real or simulated). The report is `DIR/report.html` with its PNGs beside it;
`--json` prints the key figures as JSON instead of a summary table.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="racer analyze",
        description=__doc__.split("\n\n", 1)[1] if __doc__ else None,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("run", help="run folder, DRfC model folder, console export, or car run log")
    p.add_argument(
        "--out", help="report folder (default: RUN/analysis, or NAME-analysis beside an archive)"
    )
    p.add_argument(
        "--track",
        help="track name or DeepRacer .npy route file (default: what the run declares, "
        "or the catalogue track of matching length)",
    )
    p.add_argument(
        "--no-video",
        action="store_true",
        help="car run logs: skip the MP4 replay of saved frames",
    )
    p.add_argument("--json", action="store_true", help="print the key figures as JSON")
    return p


def main(argv: list[str]) -> int:
    args = build_parser().parse_args(argv)
    run_path = Path(args.run).expanduser()
    if args.out:
        out = Path(args.out).expanduser()
    elif run_path.is_file():  # an archive or a bare run.jsonl: report beside it
        out = run_path.parent / f"{run_path.name.split('.')[0]}-analysis"
    else:
        out = run_path / "analysis"
    from rich.console import Console

    console = Console(stderr=args.json)
    from tools.analysis import carlog

    if carlog.is_car_log(run_path):
        with console.status(f"analysing car run log {run_path} ..."):
            log = carlog.load_car_log(run_path)
            summary = carlog.analyze_car_log(log, out, video=not args.no_video)
        title = "car run log"
    else:
        from tools.analysis.logs import load_run
        from tools.analysis.training_report import analyze_run

        with console.status(f"loading {run_path} ..."):
            run = load_run(run_path)
        with console.status(f"drawing the report into {out} ..."):
            summary = analyze_run(run, out, track=args.track)
        title = summary["source"]
    if args.json:
        json.dump(summary, sys.stdout, indent=2)
        sys.stdout.write("\n")
        return 0
    from rich.table import Table

    table = Table(title=f"{run_path.name}: {title}", show_header=False)
    for key, value in summary.items():
        if key in ("run", "report"):
            continue
        table.add_row(key.replace("_", " "), _fmt(value))
    console.print(table)
    console.print(f"report: [bold]{summary['report']}[/bold]")
    return 0


def _fmt(value) -> str:
    if isinstance(value, float):
        return f"{value:.3f}"
    return "–" if value is None else str(value)
