"""`racer eval TARGET --sweep`: the sim2real robustness map on the terminal and on disk.

`trainer.sweep.run_sweep` drives the policy through every `sim2real.conditions` condition
(lighting, texture, camera pose, battery level; each axis swept with the others nominal);
this module shows its progress, draws heatmaps of completion and lap time, and writes
`sweep.json` and `sweep.html`, so a user sees where the model breaks before the car does.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from sim2real.conditions import AXES, Condition


def sweep_map(
    policy_fn,
    metadata,
    track: Any,
    laps: int,
    out_dir: Path,
    *,
    conditions: list[Condition] | None = None,
    seed: int = 0,
    parallel: int = 3,
    max_episode_steps: int = 3000,
    console=None,
    title: str = "",
) -> dict[str, Any]:
    """Run the sweep with a progress bar; write sweep.json, the heatmaps and sweep.html."""
    from sim2real.conditions import default_conditions
    from tools.progress import count_bar
    from trainer.sweep import run_sweep
    from vehicle.files import atomic_write_json

    conditions = conditions or default_conditions()
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    limit: list[float | None] = [None]
    with count_bar(console, "sweep", transient=False) as bar:
        task = bar.add_task("", total=len(conditions))

        def progress(condition: Condition, report: Any) -> None:
            if report is None:
                bar.update(task, description=f"{condition.axis}: {condition.label}")
            else:
                limit[0] = report.limit_lap_time_s
                bar.advance(task)

        summary = run_sweep(
            policy_fn,
            metadata,
            track,
            laps,
            conditions=conditions,
            seed=seed,
            parallel=parallel,
            max_episode_steps=max_episode_steps,
            progress=progress,
        )
    summary["figures"] = [str(p) for p in draw_maps(summary["cells"], out_dir, limit[0])]
    summary["report"] = str(_write_report(summary, out_dir, title))
    atomic_write_json(out_dir / "sweep.json", summary)
    return summary


def _grid(results: list[dict], key: str):
    axes = [a for a in AXES if any(r["axis"] == a for r in results)]
    width = max(sum(1 for r in results if r["axis"] == a) for a in axes)
    values = np.full((len(axes), width), np.nan)
    labels = [["" for _ in range(width)] for _ in axes]
    for i, a in enumerate(axes):
        for j, r in enumerate([r for r in results if r["axis"] == a]):
            v = r[key]
            values[i, j] = np.nan if v is None else float(v)
            labels[i][j] = r["label"]
    return axes, values, labels


def draw_maps(results: list[dict], out_dir: Path, limit_lap_s: float | None) -> list[Path]:
    """Two heatmaps (rows: axes, columns: levels): completion % and mean lap time."""
    from tools.analysis import plots

    plt = plots.plt
    paths = []
    for key, name, cmap, fmt, title in (
        (
            "completion_pct",
            "sweep_completion.png",
            "RdYlGn",
            "{:.0f} %",
            "Completion (% of the lap, mean over laps)",
        ),
        (
            "mean_lap_s",
            "sweep_laptime.png",
            "viridis_r",
            "{:.2f} s",
            "Mean lap time of completed laps",
        ),
    ):
        axes, values, labels = _grid(results, key)
        fig, ax = plt.subplots(figsize=(2.3 * values.shape[1] + 1.5, 1.25 * len(axes) + 1.2))
        masked = np.ma.masked_invalid(values)
        cm = plt.get_cmap(cmap).copy()
        cm.set_bad("#dddddd")
        if key == "completion_pct":
            im = ax.imshow(masked, cmap=cm, vmin=0, vmax=100, aspect="auto")
        else:
            im = ax.imshow(masked, cmap=cm, aspect="auto")
        for i in range(values.shape[0]):
            for j in range(values.shape[1]):
                v = values[i, j]
                text = labels[i][j] + "\n" + ("no lap" if not np.isfinite(v) else fmt.format(v))
                r, g, b, _ = im.cmap(im.norm(v)) if np.isfinite(v) else (0.87, 0.87, 0.87, 1)
                dark = 0.299 * r + 0.587 * g + 0.114 * b < 0.45
                ax.text(
                    j,
                    i,
                    text,
                    ha="center",
                    va="center",
                    fontsize=8,
                    color="white" if dark else "black",
                )
        ax.set_yticks(range(len(axes)), axes)
        ax.set_xticks([])
        extra = f"; limit {limit_lap_s:.2f} s" if key == "mean_lap_s" and limit_lap_s else ""
        ax.set_title(title + extra)
        fig.colorbar(im, ax=ax, shrink=0.8)
        paths.append(plots.save(fig, out_dir / name))
    return paths


def _write_report(summary: dict, out_dir: Path, title: str) -> Path:
    from tools.analysis.report import Report

    report = Report(
        title or "openracer robustness map",
        f"track {summary['track']}, {summary['laps_per_cell']} laps per cell, seed {summary['seed']}",
    )
    sec = report.section("Where the model breaks")
    for w in summary["weakest"]:
        sec.text(
            f"{w['axis']}: worst at {w['label']} ({w['completion_pct']:.0f} % completion, {w['drop_pct']:+.0f} points below nominal)"
        )
    sec.figure(
        out_dir / "sweep_completion.png",
        "Completion per condition; each row varies one axis, the others nominal.",
    )
    sec.figure(
        out_dir / "sweep_laptime.png",
        "Mean lap time of the completed laps per condition (grey: no lap completed).",
    )
    report.section("Every cell").table(
        ["axis", "level", "laps done", "completion %", "best lap s", "mean lap s", "off-tracks"],
        [
            [
                r["axis"],
                r["label"],
                f"{r['laps_completed']}/{r['laps']}",
                r["completion_pct"],
                r["best_lap_s"] if r["best_lap_s"] is not None else float("nan"),
                r["mean_lap_s"] if r["mean_lap_s"] is not None else float("nan"),
                r["off_track"],
            ]
            for r in summary["cells"]
        ],
    )
    return report.write(out_dir, "sweep.html")


def add_arguments(parser) -> None:
    """The `racer eval` options of the sweep (`--sweep`, `--sweep-out`)."""
    parser.add_argument(
        "--sweep",
        action="store_true",
        help="robustness map: evaluate across lighting, texture, camera pose and battery "
        "level (--laps laps per cell) and draw heatmaps of completion and lap time",
    )
    parser.add_argument(
        "--sweep-out",
        default=None,
        metavar="DIR",
        help="where the sweep writes sweep.html, sweep.json and the maps (default: "
        "TARGET/sweep for runs, ./sweep-<name> otherwise)",
    )


def main_from_eval(args, policy_fn, metadata, track, run_dir: str | None) -> int:
    """`racer eval TARGET --sweep`: run the sweep and print its map (or JSON)."""
    import sys

    from rich.console import Console
    from rich.table import Table

    console = Console(stderr=bool(getattr(args, "json", False)))
    if args.sweep_out:
        out = Path(args.sweep_out)
    elif run_dir is not None:
        out = Path(run_dir) / "sweep"
    else:
        out = Path(f"sweep-{Path(args.target).stem}")
    summary = sweep_map(
        policy_fn,
        metadata,
        track,
        args.laps,
        out,
        seed=args.seed,
        max_episode_steps=getattr(args, "max_steps", 3000),
        console=console,
        title=f"Robustness map of {args.target}",
    )
    if getattr(args, "json", False):
        json.dump(summary, sys.stdout, indent=2)
        sys.stdout.write("\n")
        return 0
    axes = [a for a in AXES if any(c["axis"] == a for c in summary["cells"])]
    width = max(sum(1 for c in summary["cells"] if c["axis"] == a) for a in axes)
    table = Table(
        "axis",
        *[f"level {i + 1}" for i in range(width)],
        title=f"completion % / mean lap s on {summary['track']}",
    )
    for a in axes:
        row = []
        for c in [c for c in summary["cells"] if c["axis"] == a]:
            lap = "–" if c["mean_lap_s"] is None else f"{c['mean_lap_s']:.1f}s"
            colour = (
                "green"
                if c["completion_pct"] >= 99.9
                else ("yellow" if c["completion_pct"] >= 50 else "red")
            )
            row.append(f"{c['label']}\n[{colour}]{c['completion_pct']:.0f} %[/{colour}] {lap}")
        table.add_row(a, *row)
    console.print(table)
    broken = [w for w in summary["weakest"] if w["drop_pct"] >= 5]
    if not broken:
        console.print("no axis costs 5 points of completion or more against its nominal level")
    for w in broken:
        if w["drop_pct"] >= 5:
            console.print(
                f"breaks on [bold]{w['axis']}[/bold] at {w['label']}: {w['completion_pct']:.0f} % completion ({w['drop_pct']:.0f} points below nominal)"
            )
    console.print(f"report: [bold]{summary['report']}[/bold]")
    return 0
