"""`racer eval TARGET --sweep`: the sim2real robustness map.

Evaluates one policy across a grid of conditions the real car meets and the simulator can
pin down exactly: lighting (the camera image's gain, as a lamp or the sun changes it),
texture (floor, road and background looks), camera pose (pitch and height of the mount)
and battery level (state of charge: a drained pack sags and the car slows). Each axis is
swept with the others at their nominal value, every cell a time trial of `laps` laps from
the start line with the same seeds, so a user sees where the model breaks before the car
does. Output: `sweep.json`, heatmaps of completion and lap time, and `sweep.html`.

Each cell is a Gymnasium env id registered here around `openracer/Race-v0` with a fixed
`WorldConfig` (camera, battery, texture) and, for lighting, an observation wrapper scaling
the image as `sim2real`'s per-frame lighting effect does; `trainer.evaluate.evaluate`
runs the laps, so lap semantics are exactly those of `racer eval`.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

AXES = ("lighting", "texture", "camera", "battery")
"""Sweep axes in display order."""


@dataclass(frozen=True)
class Cell:
    """One condition of the sweep: an axis, a level label, and what it changes."""

    axis: str
    """Which axis this level belongs to."""
    label: str
    """Short label shown in the map."""
    nominal: bool = False
    """True for the axis' nominal level (what training saw without randomization)."""
    gain: float = 1.0
    """Lighting: image gain (1 = as rendered)."""
    gamma: float = 1.0
    """Lighting: image gamma (1 = as rendered)."""
    style: dict[str, Any] = field(default_factory=dict)
    """Texture: `TextureStyle` field overrides."""
    camera: dict[str, Any] = field(default_factory=dict)
    """Camera pose: `CameraConfig` field overrides."""
    battery_soc: float | None = None
    """Battery: initial state of charge (None: ideal supply)."""

    def world(self):
        """The `sim2real.world.WorldConfig` of this cell."""
        from dataclasses import replace

        from sim2real.battery import BatteryConfig
        from sim2real.world import WorldConfig

        base = WorldConfig()
        return replace(
            base,
            camera=replace(base.camera, **self.camera),
            style=replace(base.style, **self.style),
            battery=None
            if self.battery_soc is None
            else BatteryConfig(initial_soc=self.battery_soc),
        )


def default_cells() -> list[Cell]:
    """The standard grid: six levels per axis, the nominal one among them."""
    return [
        Cell("lighting", "very dark ×0.25", gain=0.25, gamma=1.4),
        Cell("lighting", "dark ×0.45", gain=0.45, gamma=1.2),
        Cell("lighting", "dim ×0.7", gain=0.7, gamma=1.1),
        Cell("lighting", "nominal", nominal=True),
        Cell("lighting", "bright ×1.3", gain=1.3, gamma=0.9),
        Cell("lighting", "glare ×1.8", gain=1.8, gamma=0.75),
        Cell("texture", "plain room", style={"floor_kind": "plain", "background_kind": "plain"}),
        Cell("texture", "concrete", style={"floor_kind": "concrete", "floor_bgr": (150, 150, 150)}),
        Cell("texture", "nominal", nominal=True),
        Cell(
            "texture",
            "tiles, light road",
            style={"floor_kind": "tiles", "road_bgr": (105, 105, 110)},
        ),
        Cell(
            "texture",
            "barriers, red carpet",
            style={
                "background_kind": "barriers",
                "floor_kind": "carpet",
                "floor_bgr": (60, 60, 140),
            },
        ),
        Cell(
            "texture",
            "shadows, thin lines",
            style={"shadows": 4, "border_width_m": 0.03, "centre_width_m": 0.025},
        ),
        Cell("camera", "pitch 8°", camera={"pitch_deg": 8.0}),
        Cell("camera", "low 9 cm", camera={"height_m": 0.09}),
        Cell("camera", "nominal", nominal=True),
        Cell("camera", "high 13 cm", camera={"height_m": 0.13}),
        Cell("camera", "pitch 22°", camera={"pitch_deg": 22.0}),
        # the real DeepRacer lens is far wider than the simulator's (compat reference 6.3)
        Cell("camera", "fisheye 120°", camera={"model": "fisheye", "hfov_deg": 120.0}),
        Cell("battery", "full 100 %", battery_soc=1.0),
        Cell("battery", "75 %", battery_soc=0.75),
        Cell("battery", "nominal (ideal)", nominal=True),
        Cell("battery", "50 %", battery_soc=0.5),
        Cell("battery", "30 %", battery_soc=0.3),
        Cell("battery", "empty 5 %", battery_soc=0.05),
    ]


def _lighting_wrapper(env, gain: float, gamma: float):
    import gymnasium as gym

    lut = np.clip(255.0 * gain * (np.arange(256) / 255.0) ** gamma, 0, 255).astype(np.uint8)

    class Lighting(gym.ObservationWrapper):
        """Scales the camera image as a brighter or darker scene would."""

        def observation(self, observation):
            return lut[observation]

    return Lighting(env)


def _make_cell_env(cell: Cell, **kwargs):
    from sim2real.env import RaceEnv

    env = RaceEnv(world=cell.world(), **kwargs)
    if cell.gain != 1.0 or cell.gamma != 1.0:
        env = _lighting_wrapper(env, cell.gain, cell.gamma)
    return env


def register_cell(cell: Cell, index: int) -> str:
    """Register (once) and return the Gymnasium id of a cell's environment."""
    import gymnasium as gym

    import sim2real  # noqa: F401  (registers openracer/Race-v0)

    env_id = f"openracer/SweepCell{index}-v0"
    if env_id in gym.registry:
        del gym.registry[env_id]
    gym.register(id=env_id, entry_point=lambda **kw: _make_cell_env(cell, **kw))
    return env_id


def run_sweep(
    policy_fn,
    metadata,
    track: Any,
    laps: int,
    out_dir: Path,
    *,
    cells: list[Cell] | None = None,
    seed: int = 0,
    parallel: int = 3,
    max_episode_steps: int = 3000,
    console=None,
    title: str = "",
) -> dict[str, Any]:
    """Evaluate `policy_fn` on every cell; write sweep.json, the heatmaps and sweep.html."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from trainer.evaluate import evaluate

    cells = cells or default_cells()
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    results = []
    limit = None
    with Progress(
        TextColumn("[bold]sweep[/bold] {task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
        transient=False,
    ) as progress:
        task = progress.add_task("", total=len(cells))
        for i, cell in enumerate(cells):
            progress.update(task, description=f"{cell.axis}: {cell.label}")
            env_id = register_cell(cell, i)
            report = evaluate(
                policy_fn,
                track,
                laps,
                "none",
                metadata=metadata,
                seed=seed,
                parallel=min(parallel, laps),
                env_id=env_id,
                max_episode_steps=max_episode_steps,
            )
            limit = report.limit_lap_time_s
            results.append(
                {
                    "axis": cell.axis,
                    "label": cell.label,
                    "nominal": cell.nominal,
                    "laps": laps,
                    "laps_completed": report.laps_completed,
                    "completion_pct": round(float(report.completion_pct), 2),
                    "best_lap_s": _finite(report.best_lap_s),
                    "mean_lap_s": _finite(report.mean_lap_s),
                    "off_track": int(sum(lap.off_track for lap in report.laps)),
                    "statuses": [lap.status for lap in report.laps],
                }
            )
            progress.advance(task)
    summary = {
        "track": str(getattr(track, "name", track)),
        "laps_per_cell": laps,
        "seed": seed,
        "limit_lap_s": _finite(limit),
        "cells": results,
        "weakest": _weakest(results),
    }
    summary["figures"] = [str(p) for p in draw_maps(results, out_dir, limit)]
    summary["report"] = str(_write_report(summary, out_dir, title))
    from vehicle.files import atomic_write_json

    atomic_write_json(out_dir / "sweep.json", summary)
    return summary


def _finite(x) -> float | None:
    return None if x is None or not math.isfinite(float(x)) else round(float(x), 3)


def _weakest(results: list[dict]) -> list[dict]:
    """The cells where completion drops most below the nominal cell of the same axis."""
    out = []
    for axis in AXES:
        row = [r for r in results if r["axis"] == axis]
        nominal = next((r for r in row if r["nominal"]), None)
        if not row or nominal is None:
            continue
        worst = min(row, key=lambda r: (r["completion_pct"], -(r["mean_lap_s"] or 0)))
        out.append(
            {
                "axis": axis,
                "label": worst["label"],
                "completion_pct": worst["completion_pct"],
                "drop_pct": round(nominal["completion_pct"] - worst["completion_pct"], 2),
            }
        )
    return sorted(out, key=lambda r: -r["drop_pct"])


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
    summary = run_sweep(
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
