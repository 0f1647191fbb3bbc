"""A local time-trial race, as DeepRacer's virtual circuit runs one: several models, one
track, the same number of laps from the start line under the same seeded conditions, and
a leaderboard.

Each entry (a model bundle, a `.tflite` with its metadata, or a run folder) is evaluated
by `trainer.evaluate.evaluate` exactly as `racer eval` does, its evaluation simtrace kept
in `OUT/entries/<name>/`. Standings: most laps completed first, then the lowest total
time of the completed laps, then the best lap; off-tracks and mean completion are shown.
The winner's best lap (or, if nobody finished, its furthest attempt) is replayed as an MP4
over the top-down track picture. `OUT/race.html`, `OUT/race.json`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from tools.analysis.errors import AnalysisError


@dataclass
class Entry:
    """One model's race."""

    name: str
    """Display name (file or folder name, made unique)."""
    target: str
    """What was raced: bundle, .tflite or run folder."""
    laps: list[dict[str, Any]]
    """Per-lap results (trainer.evaluate.LapResult fields)."""
    simtrace: str | None
    """The evaluation simtrace CSV of this entry."""
    backend: str = ""
    """Inference backend used (TFLite runtime or TensorFlow)."""

    @property
    def laps_completed(self) -> int:
        return sum(1 for lap in self.laps if lap["completed"])

    @property
    def total_time_s(self) -> float:
        """Sum of the completed laps' times (the time-trial clock)."""
        return float(sum(lap["lap_time_s"] for lap in self.laps if lap["completed"]))

    @property
    def best_lap_s(self) -> float | None:
        times = [lap["lap_time_s"] for lap in self.laps if lap["completed"]]
        return min(times) if times else None

    @property
    def off_tracks(self) -> int:
        return int(sum(lap["off_track"] for lap in self.laps))

    @property
    def completion_pct(self) -> float:
        return float(np.mean([lap["completion_pct"] for lap in self.laps])) if self.laps else 0.0

    def rank_key(self) -> tuple:
        best = self.best_lap_s if self.best_lap_s is not None else math.inf
        total = self.total_time_s if self.laps_completed else math.inf
        return (-self.laps_completed, total, best, -self.completion_pct, self.off_tracks)

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "target": self.target,
            "laps_completed": self.laps_completed,
            "laps": len(self.laps),
            "best_lap_s": _r(self.best_lap_s),
            "total_time_s": _r(self.total_time_s) if self.laps_completed else None,
            "off_tracks": self.off_tracks,
            "completion_pct": _r(self.completion_pct),
            "per_lap": self.laps,
            "simtrace": self.simtrace,
            "backend": self.backend,
        }


def _r(x: float | None) -> float | None:
    return None if x is None or not math.isfinite(x) else round(float(x), 3)


def standings(entries: list[Entry]) -> list[Entry]:
    """Entries in finishing order (see the module docstring)."""
    return sorted(entries, key=lambda e: e.rank_key())


def unique_names(targets: list[str]) -> list[str]:
    """Display names from targets: the file stem or folder name, `#2`... for repeats."""
    seen: dict[str, int] = {}
    out = []
    for t in targets:
        p = Path(t)
        base = p.stem if p.is_file() else p.resolve().name
        if base in ("run", "model") and p.resolve().parent.name:
            base = f"{p.resolve().parent.name}/{base}"  # racer new's MODEL/run
        seen[base] = seen.get(base, 0) + 1
        out.append(base if seen[base] == 1 else f"{base}#{seen[base]}")
    return out


def run_race(
    targets: list[str],
    track: str,
    laps: int,
    out_dir: Path,
    *,
    seed: int = 0,
    randomize: str = "none",
    max_steps: int = 3000,
    video: bool = True,
    console=None,
) -> dict[str, Any]:
    """Race every target, write the leaderboard, the figures, the winner's MP4 and HTML."""
    from tools.progress import count_bar
    from trainer.evaluate import evaluate
    from trainer.targets import policy_from_target

    if not targets:
        raise AnalysisError("racer race needs at least one model: racer race A.bundle B.bundle ...")
    if laps < 1:
        raise AnalysisError(f"--laps {laps} must be at least 1")
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    names = unique_names(targets)
    entries: list[Entry] = []
    limit = None
    track_name = str(track)
    with count_bar(console, "race") as progress:
        task = progress.add_task("", total=len(targets))
        for name, target in zip(names, targets, strict=True):
            progress.update(task, description=name)
            policy_fn, metadata, info, _ = policy_from_target(target, "best")
            logs = out_dir / "entries" / name.replace("/", "_")
            report = evaluate(
                policy_fn,
                track,
                laps,
                randomize,
                metadata=metadata,
                seed=seed,
                max_episode_steps=max_steps,
                simtrace_dir=logs,
            )
            limit = report.limit_lap_time_s
            track_name = report.track
            data = report.to_json()
            entries.append(
                Entry(
                    name=name,
                    target=str(target),
                    laps=data["per_lap"],
                    simtrace=report.extra.get("simtrace"),
                    backend=str(info.get("backend", "tensorflow")),
                )
            )
            progress.advance(task)
    order = standings(entries)
    result: dict[str, Any] = {
        "track": track_name,
        "laps": laps,
        "seed": seed,
        "randomize": randomize,
        "limit_lap_s": _r(limit),
        "leaderboard": [dict(position=i + 1, **e.to_json()) for i, e in enumerate(order)],
        "winner": order[0].name,
    }
    figures = _figures(order, track, limit, out_dir)
    if video:
        clip = winner_video(order[0], track, out_dir / "winner_best_lap.mp4")
        if clip is not None:
            result["winner_video"] = clip
    result["figures"] = [str(p) for p in figures]
    result["report"] = str(_write_report(result, out_dir, figures))
    from vehicle.files import atomic_write_json

    atomic_write_json(out_dir / "race.json", result)
    return result


def _winner_lap(entry: Entry):
    """The winner's best completed lap (or furthest attempt) as simtrace rows."""
    from tools.analysis.episodes import episode_table, steps_of
    from tools.analysis.logs import load_eval_dirs

    if not entry.simtrace:
        return None, None
    run_dir = Path(entry.simtrace).parents[2]
    steps = load_eval_dirs(run_dir.glob("evaluation-*"))
    if steps is None or len(steps) == 0:
        return None, None
    eps = episode_table(steps)
    done = eps[eps["complete"]]
    row = (
        done.sort_values("lap_time_s").iloc[0]
        if len(done)
        else eps.sort_values("progress").iloc[-1]
    )
    return steps_of(steps, row), row


def winner_video(entry: Entry, track: str, path: Path) -> dict[str, Any] | None:
    """MP4 of the winner's best lap over the top-down track picture."""
    from tools.analysis.replay import lap_frames, write_mp4
    from tracks import catalogue

    lap, row = _winner_lap(entry)
    if lap is None or len(lap) < 2:
        return None
    t = catalogue.resolve(track)
    try:
        from tracks.racing_line import racing_line

        line = racing_line(t)
    except Exception:  # the racing line is context on the picture, not the point
        line = None
    what = (
        f"{row['lap_time_s']:.2f} s"
        if row["complete"]
        else f"{row['progress']:.0f} % ({row['status']})"
    )
    frames = lap_frames(
        t,
        lap["x"].to_numpy(float),
        lap["y"].to_numpy(float),
        lap["tstamp"].to_numpy(float),
        lap["speed"].to_numpy(float),
        f"{entry.name}: best lap {what}",
        racing_line=line,
    )
    fps = 1.0 / float(np.median(np.diff(lap["tstamp"].to_numpy(float)))) if len(lap) > 2 else 15.0
    info = write_mp4(frames, path, float(np.clip(fps, 1.0, 60.0)))
    info["lap"] = {
        "episode": int(row["episode"]),
        "complete": bool(row["complete"]),
        "time_s": _r(float(row["time_s"])),
    }
    return info


def _figures(order: list[Entry], track: str, limit: float | None, out_dir: Path) -> list[Path]:
    from tools.analysis import plots
    from tools.analysis.outline import load_outline

    plt = plots.plt
    paths = []
    fig, ax = plt.subplots(figsize=(max(7, 1.6 * len(order) + 3), 4))
    n_laps = max(len(e.laps) for e in order)
    width = 0.8 / max(1, n_laps)
    for k in range(n_laps):
        xs, hs, colours = [], [], []
        for i, e in enumerate(order):
            if k < len(e.laps):
                lap = e.laps[k]
                xs.append(i - 0.4 + width * (k + 0.5))
                hs.append(lap["lap_time_s"])
                colours.append("#2ca02c" if lap["completed"] else "#d62728")
        ax.bar(xs, hs, width=width * 0.9, color=colours)
    if limit:
        ax.axhline(limit, color="#1f77b4", ls="--", label=f"limit {limit:.2f} s")
        ax.legend()
    ax.set_xticks(range(len(order)), [f"{i + 1}. {e.name}" for i, e in enumerate(order)])
    ax.set_ylabel("lap time (s); red: not finished")
    ax.set_title("Every lap of every entry")
    ax.grid(alpha=0.3, axis="y")
    paths.append(plots.save(fig, out_dir / "race_laps.png"))
    lap, row = _winner_lap(order[0])
    if lap is not None:
        try:
            outline = load_outline(str(track))
        except AnalysisError:
            outline = None
        what = f"{row['lap_time_s']:.2f} s" if row["complete"] else f"{row['progress']:.0f} %"
        paths.append(
            plots.laps_over_track(
                [(f"{order[0].name}: {what}", lap)],
                outline,
                out_dir / "winner_lap.png",
                "Winner's best lap",
            )
        )
    return paths


def _write_report(result: dict[str, Any], out_dir: Path, figures: list[Path]) -> Path:
    from tools.analysis.report import Report

    report = Report(
        f"openracer race on {result['track']}",
        f"{len(result['leaderboard'])} models, {result['laps']} laps each, randomize {result['randomize']}, seed {result['seed']}",
    )
    sec = report.section("Leaderboard")
    sec.table(
        ["#", "model", "laps", "best lap s", "total time s", "off-tracks", "completion %"],
        [
            [
                e["position"],
                e["name"],
                f"{e['laps_completed']}/{e['laps']}",
                e["best_lap_s"] if e["best_lap_s"] is not None else float("nan"),
                e["total_time_s"] if e["total_time_s"] is not None else float("nan"),
                e["off_tracks"],
                e["completion_pct"],
            ]
            for e in result["leaderboard"]
        ],
    )
    if result.get("limit_lap_s"):
        sec.text(
            f"The track's limit lap time (racing line at the car's limits): {result['limit_lap_s']:.2f} s."
        )
    for p in figures:
        sec.figure(
            p,
            "Lap times of every entry (green finished, red not)"
            if "laps" in p.name
            else "The winner's best lap over the track, coloured by speed.",
        )
    if "winner_video" in result:
        report.section("Winner's best lap").link(
            out_dir / "winner_best_lap.mp4", "winner_best_lap.mp4"
        )
    return report.write(out_dir, "race.html")
