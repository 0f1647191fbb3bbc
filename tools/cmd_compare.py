"""`racer compare RUN RUN...`: training curves and evaluation figures of several runs side by side.

Each RUN is any folder `racer analyze` reads (openracer run, deepracer-for-cloud model,
console export). Writes DIR/compare.html with the curves on shared axes, the evaluation
lap times and completion rates, and a table of key figures; prints the table (or JSON
with --json).
"""

from __future__ import annotations

import argparse
import json
import sys
import warnings
from pathlib import Path

from tools.analysis.errors import AnalysisError, AnalysisWarning


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="racer compare",
        description=(__doc__ or "").split("\n\n", 1)[1],
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("runs", nargs="+", help="two or more run folders")
    p.add_argument("--out", default="compare", help="report folder (default ./compare)")
    p.add_argument("--track", help="track for the limit lap time (name or .npy)")
    p.add_argument("--json", action="store_true", help="print the key figures as JSON")
    return p


_COLUMNS = (
    ("iterations", "iterations"),
    ("training_episodes", "episodes"),
    ("last_iteration_progress_mean", "last progress %"),
    ("last_iteration_completion_rate", "last completion"),
    ("best_training_lap_s", "best train lap s"),
    ("evaluation_episodes", "eval episodes"),
    ("evaluation_completion_rate", "eval completion"),
    ("best_evaluation_lap_s", "best eval lap s"),
    ("mean_evaluation_lap_s", "mean eval lap s"),
)


def compare(run_paths: list[Path], out: Path, track: str | None = None) -> dict:
    """Load every run, draw the comparison figures, write compare.html; key figures."""
    from tools.analysis import plots
    from tools.analysis.episodes import episode_table, iteration_table
    from tools.analysis.logs import load_run
    from tools.analysis.outline import find_outline, with_racing_line
    from tools.analysis.report import Report
    from tools.analysis.training_report import summarize
    from vehicle.files import atomic_write_json

    if len(run_paths) < 2:
        raise AnalysisError("racer compare needs at least two runs")
    runs = [load_run(p) for p in run_paths]
    names = _unique_names([r.name for r in runs])
    out.mkdir(parents=True, exist_ok=True)
    summaries = {n: summarize(r) for n, r in zip(names, runs, strict=True)}
    report = Report("openracer comparison", ", ".join(names))
    curves = [
        (n, iteration_table(episode_table(r.training)))
        for n, r in zip(names, runs, strict=True)
        if r.training is not None
    ]
    if curves:
        report.section("Training").figure(
            plots.compare_curves(curves, out / "compare_training.png"),
            "Mean reward, mean progress and laps completed per iteration, every run.",
        )
    evals = [
        (n, episode_table(r.evaluation))
        for n, r in zip(names, runs, strict=True)
        if r.evaluation is not None
    ]
    limit = None
    outline, how = find_outline(track, runs[0].track_hint, runs[0].track_length_m)
    if outline is not None:
        limit = with_racing_line(outline).limit_lap_s
    else:
        # As `racer analyze`: the comparison is still useful, without the limit lap time.
        warnings.warn(f"{runs[0].root}: {how}", AnalysisWarning, stacklevel=1)
        report.section("Track").note(how)
    if evals:
        report.section("Evaluation").figure(
            plots.compare_evaluations(evals, limit, out / "compare_evaluation.png"),
            "Evaluation lap times (box: completed laps; triangle: mean) and completion rate.",
        )
    rows = [[n, *[summaries[n].get(k) for k, _ in _COLUMNS]] for n in names]
    report.section("Key figures").table(["run", *[label for _, label in _COLUMNS]], rows)
    path = report.write(out, "compare.html")
    result = {"report": str(path), "runs": summaries}
    atomic_write_json(out / "compare.json", result)
    return result


def _unique_names(names: list[str]) -> list[str]:
    seen: dict[str, int] = {}
    out = []
    for n in names:
        seen[n] = seen.get(n, 0) + 1
        out.append(n if seen[n] == 1 else f"{n}#{seen[n]}")
    return out


def main(argv: list[str]) -> int:
    args = build_parser().parse_args(argv)
    from rich.console import Console
    from rich.table import Table

    console = Console(stderr=args.json)
    with console.status("comparing runs ..."):
        result = compare([Path(p).expanduser() for p in args.runs], Path(args.out), args.track)
    if args.json:
        json.dump(result, sys.stdout, indent=2)
        sys.stdout.write("\n")
        return 0
    runs = result["runs"]
    table = Table("", *runs, title="racer compare")
    for key, label in _COLUMNS:
        table.add_row(label, *[_fmt(s.get(key)) for s in runs.values()])
    console.print(table)
    console.print(f"report: [bold]{result['report']}[/bold]")
    return 0


def _fmt(v) -> str:
    if v is None:
        return "–"
    if isinstance(v, float):
        return f"{v:.3f}"
    return str(v)
