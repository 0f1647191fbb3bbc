"""The PNG figures of training, evaluation, comparison and race reports.

Every function takes tables from `tools.analysis.episodes` (and an `Outline` for track
views), draws one figure with matplotlib's Agg backend, saves it as PNG with an atomic
replace and returns the path. Nothing opens a window.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from matplotlib.ticker import MaxNLocator  # noqa: E402

from tools.analysis.episodes import STATUSES  # noqa: E402
from tools.analysis.outline import Outline  # noqa: E402
from vehicle.files import atomic_path  # noqa: E402

STATUS_COLOURS = {
    "lap_complete": "#2ca02c",
    "off_track": "#d62728",
    "crashed": "#9467bd",
    "reversed": "#ff7f0e",
    "immobilized": "#8c564b",
    "time_up": "#7f7f7f",
    "other": "#bbbbbb",
}
DPI = 110


def save(fig, path: Path) -> Path:
    """Save a figure as PNG atomically (temp file, fsync, replace) and close it."""
    path = Path(path)
    try:
        with atomic_path(path) as tmp:
            fig.savefig(tmp, format="png", dpi=DPI, bbox_inches="tight")
    finally:
        plt.close(fig)
    return path


def draw_track(ax, outline: Outline | None, racing_line: bool = True) -> None:
    """Borders (grey), centre line (dashed) and racing line (blue) on equal axes."""
    if outline is not None:
        for line in (outline.inner, outline.outer):
            ax.plot(line[:, 0], line[:, 1], color="#555555", lw=1.4)
        ax.plot(outline.center[:, 0], outline.center[:, 1], color="#aaaaaa", lw=0.8, ls="--")
        ax.plot(*outline.center[0], marker="|", ms=14, mew=3, color="black")
        if racing_line and outline.racing_line is not None:
            rl = outline.racing_line
            ax.plot(rl[:, 0], rl[:, 1], color="#1f77b4", lw=1.2, alpha=0.8, label="racing line")
    ax.set_aspect("equal")
    ax.set_xlabel("x (m)")
    ax.set_ylabel("y (m)")


TREND_ITERATIONS = 20
"""Window of the moving mean drawn over the per-iteration lap completion."""


def training_curves(iters: pd.DataFrame, path: Path, title: str = "") -> Path:
    """Reward, progress and completion rate per iteration, stacked."""
    fig, axes = plt.subplots(3, 1, figsize=(9, 8.5), sharex=True)
    x = iters["iteration"]
    ax = axes[0]
    ax.plot(x, iters["reward_mean"], marker="o", ms=3, color="#1f77b4")
    ax.fill_between(
        x,
        iters["reward_mean"] - iters["reward_std"],
        iters["reward_mean"] + iters["reward_std"],
        alpha=0.2,
        color="#1f77b4",
    )
    ax.set_ylabel("reward per episode")
    ax.set_title(title or "Training by iteration")
    ax = axes[1]
    ax.plot(x, iters["progress_mean"], marker="o", ms=3, color="#ff7f0e", label="mean")
    ax.plot(x, iters["progress_max"], ls=":", color="#ff7f0e", label="best")
    ax.set_ylabel("progress (%)")
    ax.set_ylim(0, 105)
    ax.legend(loc="lower right")
    ax = axes[2]
    completion = 100 * iters["completion_rate"]
    ax.bar(x, completion, color="#2ca02c", alpha=0.45, width=1.0, label="per iteration")
    if len(iters) >= 2 * TREND_ITERATIONS:
        # one iteration is 16-odd episodes: the trend is what says whether it learns
        trend = completion.rolling(TREND_ITERATIONS, min_periods=TREND_ITERATIONS).mean()
        ax.plot(x, trend, color="#145a14", lw=2, label=f"mean of {TREND_ITERATIONS} iterations")
        ax.legend(loc="lower right")
    ax.set_ylabel("laps completed (%)")
    ax.set_ylim(0, 105)
    ax.set_xlabel("iteration")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    for a in axes:
        a.grid(alpha=0.3)
    return save(fig, path)


def dagger_rounds(rounds: list[dict[str, Any]], path: Path) -> Path:
    """Laps completed in each DAgger round's episodes, and their mean lap time."""
    fig, ax = plt.subplots(figsize=(9, 3.8))
    x = np.arange(1, len(rounds) + 1)
    ax.bar(x, [r.get("laps", 0) for r in rounds], color="#2ca02c", label="laps completed")
    ax.set_xlabel("DAgger round (the student drives; the expert labels its frames)")
    ax.set_ylabel("laps completed")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.grid(alpha=0.3)
    lap = [r.get("mean_lap_s") for r in rounds]
    if any(v is not None and np.isfinite(v) for v in lap):
        ax2 = ax.twinx()
        ax2.plot(x, [np.nan if v is None else v for v in lap], "o-", color="#d62728", ms=3)
        ax2.set_ylabel("mean lap (s)", color="#d62728")
    ax.set_title("Imitation: DAgger rounds")
    return save(fig, path)


def status_breakdown(iters: pd.DataFrame, path: Path) -> Path:
    """Stacked bars: how the episodes of each iteration ended."""
    fig, ax = plt.subplots(figsize=(9, 3.8))
    bottom = np.zeros(len(iters))
    for status in (*STATUSES, "other"):
        if status not in iters or iters[status].sum() == 0:
            continue
        values = iters[status].to_numpy(dtype=float)
        ax.bar(
            iters["iteration"],
            values,
            bottom=bottom,
            color=STATUS_COLOURS[status],
            label=status.replace("_", " "),
        )
        bottom += values
    ax.set_xlabel("iteration")
    ax.set_ylabel("episodes")
    ax.set_title("How episodes ended")
    ax.legend(loc="upper left", bbox_to_anchor=(1.0, 1.0), frameon=False)
    ax.grid(alpha=0.3, axis="y")
    return save(fig, path)


def track_heatmap(
    steps: pd.DataFrame,
    outline: Outline | None,
    value: str,
    path: Path,
    label: str,
    cmap: str = "viridis",
    max_points: int = 60000,
) -> Path:
    """Every logged position over the track, coloured by `value` (speed, reward, action)."""
    df = steps[steps["episode_status"] != "prepare"]
    if len(df) > max_points:
        df = df.sample(max_points, random_state=0)
    fig, ax = plt.subplots(figsize=(9, 6.5))
    draw_track(ax, outline, racing_line=False)
    values = df[value].to_numpy(dtype=float)
    if value == "action":
        n = int(max(values.max(), 0)) + 1 if len(values) else 1
        cmap_obj = plt.get_cmap("tab20" if n > 10 else "tab10", max(n, 1))
        sc = ax.scatter(df["x"], df["y"], c=values, s=3, cmap=cmap_obj, vmin=-0.5, vmax=n - 0.5)
    else:
        sc = ax.scatter(df["x"], df["y"], c=values, s=3, cmap=cmap, alpha=0.7)
    fig.colorbar(sc, ax=ax, label=label, shrink=0.8)
    ax.set_title(f"Positions coloured by {label}")
    return save(fig, path)


def action_histograms(steps: pd.DataFrame, metadata: dict | None, path: Path) -> Path:
    """Action index counts (with their steering/speed), steering and speed histograms."""
    df = steps[steps["episode_status"] != "prepare"]
    fig, axes = plt.subplots(1, 3, figsize=(13, 3.8))
    ax = axes[0]
    if (df["action"] >= 0).any():
        counts = df["action"].value_counts().sort_index()
        labels = []
        space = (metadata or {}).get("action_space")
        for idx in counts.index:
            if isinstance(space, list) and 0 <= int(idx) < len(space):
                a = space[int(idx)]
                labels.append(f"{int(idx)}\n{a['steering_angle']:g}°\n{a['speed']:g}")
            else:
                labels.append(str(int(idx)))
        ax.bar(range(len(counts)), 100 * counts.to_numpy() / counts.sum(), color="#1f77b4")
        ax.set_xticks(range(len(counts)), labels, fontsize=7)
        ax.set_ylabel("share of steps (%)")
        ax.set_title("Actions (index, steering, m/s)")
    else:
        ax.hist2d(df["steering_angle"], df["speed"], bins=(21, 15), cmap="Blues")
        ax.set_xlabel("steering (deg)")
        ax.set_ylabel("speed (m/s)")
        ax.set_title("Continuous actions")
    axes[1].hist(df["steering_angle"], bins=31, color="#ff7f0e")
    axes[1].set_xlabel("steering (deg, + = left)")
    axes[1].set_title("Steering")
    axes[2].hist(df["speed"], bins=20, color="#2ca02c")
    axes[2].set_xlabel("speed (m/s)")
    axes[2].set_title("Speed")
    for a in axes:
        a.grid(alpha=0.3)
    fig.tight_layout()
    return save(fig, path)


def laps_over_track(
    laps: list[tuple[str, pd.DataFrame]], outline: Outline | None, path: Path, title: str
) -> Path:
    """A few laps drawn over the track and its racing line, coloured by speed."""
    n = max(1, len(laps))
    cols = min(n, 3)
    rows = (n + cols - 1) // cols
    fig, axes = plt.subplots(
        rows, cols, figsize=(6.2 * cols, 4.8 * rows), squeeze=False, layout="constrained"
    )
    vmax = max([float(d["speed"].max()) for _, d in laps if len(d)] + [0.1])
    sc = None
    for ax, (label, df) in zip(axes.flat, laps, strict=False):
        draw_track(ax, outline)
        sc = ax.scatter(df["x"], df["y"], c=df["speed"], s=9, cmap="plasma", vmin=0, vmax=vmax)
        ax.plot(df["x"], df["y"], color="black", lw=0.4, alpha=0.5)
        ax.set_title(label, fontsize=10)
        if outline is not None and outline.racing_line is not None:
            ax.legend(loc="lower right", fontsize=7)
    for ax in list(axes.flat)[len(laps) :]:
        ax.axis("off")
    if sc is not None:
        fig.colorbar(sc, ax=axes, label="speed (m/s)", shrink=0.7)
    fig.suptitle(title)
    return save(fig, path)


def eval_lap_times(
    eval_eps: pd.DataFrame, limit_lap_s: float | None, path: Path, title: str = ""
) -> Path:
    """Evaluation lap times per episode against the racing line's limit lap time;
    incomplete episodes shown by the progress they reached."""
    fig, ax = plt.subplots(figsize=(9, 3.8))
    labels = [
        f"{s[-6:] if s else ''}#{int(e)}"
        for s, e in zip(eval_eps["stream"], eval_eps["episode"], strict=True)
    ]
    x = np.arange(len(eval_eps))
    done = eval_eps["complete"].to_numpy()
    times = eval_eps["lap_time_s"].to_numpy(dtype=float)
    ax.bar(x[done], times[done], color="#2ca02c", label="lap time")
    for xi, t in zip(x[done], times[done], strict=True):
        note = f"{t:.2f} s" + (f"\n×{t / limit_lap_s:.2f}" if limit_lap_s else "")
        ax.text(xi, t, note, ha="center", va="bottom", fontsize=8)
    top = np.nanmax(times) if done.any() else (limit_lap_s or 10.0)
    for xi, prog in zip(x[~done], eval_eps["progress"].to_numpy()[~done], strict=True):
        ax.bar(xi, top * 0.15, color=STATUS_COLOURS["off_track"])
        ax.text(xi, top * 0.17, f"{prog:.0f}%", ha="center", fontsize=8)
    if limit_lap_s:
        ax.axhline(limit_lap_s, color="#1f77b4", ls="--", label=f"limit {limit_lap_s:.2f} s")
    ax.set_xticks(x, labels, rotation=45 if len(x) > 8 else 0, fontsize=8)
    ax.set_ylabel("lap time (s)")
    ax.set_title(title or "Evaluation laps (red: not completed, with progress)")
    ax.legend(loc="upper right")
    ax.grid(alpha=0.3, axis="y")
    return save(fig, path)


def metrics_curves(metrics: pd.DataFrame, episodes_per_iteration: int, path: Path) -> Path:
    """DeepRacer console's training graph from TrainingMetrics.json: completion of
    training and evaluation episodes per iteration."""
    m = metrics.copy()
    # the simapp numbers training episodes from 1 (evaluations reuse the last number);
    # accept 0-based numbering too
    first = 0 if (m["episode"] == 0).any() else 1
    m["iteration"] = ((m["episode"] - first) // max(1, episodes_per_iteration)).astype(int)
    fig, ax = plt.subplots(figsize=(9, 3.8))
    for phase, colour in (("training", "#1f77b4"), ("evaluation", "#d62728")):
        part = m[m["phase"] == phase]
        if len(part):
            mean = part.groupby("iteration")["completion_percentage"].mean()
            ax.plot(mean.index, mean.values, marker="o", ms=3, color=colour, label=phase)
    ax.set_xlabel("iteration")
    ax.set_ylabel("completion (%)")
    ax.set_ylim(0, 105)
    ax.set_title("TrainingMetrics.json: mean completion per iteration")
    ax.legend()
    ax.grid(alpha=0.3)
    return save(fig, path)


def compare_curves(runs: list[tuple[str, pd.DataFrame]], path: Path) -> Path:
    """Several runs' reward, progress and completion per iteration on shared axes."""
    fig, axes = plt.subplots(1, 3, figsize=(15, 4.2))
    for name, iters in runs:
        axes[0].plot(iters["iteration"], iters["reward_mean"], marker="o", ms=2, label=name)
        axes[1].plot(iters["iteration"], iters["progress_mean"], marker="o", ms=2, label=name)
        axes[2].plot(
            iters["iteration"], 100 * iters["completion_rate"], marker="o", ms=2, label=name
        )
    for ax, ylabel in zip(
        axes, ("reward per episode", "progress (%)", "laps completed (%)"), strict=True
    ):
        ax.set_xlabel("iteration")
        ax.set_ylabel(ylabel)
        ax.grid(alpha=0.3)
    axes[1].set_ylim(0, 105)
    axes[2].set_ylim(0, 105)
    axes[0].legend(fontsize=8)
    fig.tight_layout()
    return save(fig, path)


def compare_evaluations(runs: list[tuple[str, pd.DataFrame]], limit_lap_s, path: Path) -> Path:
    """Evaluation lap times (box per run) and completion rate (bars) side by side."""
    fig, axes = plt.subplots(1, 2, figsize=(13, 4.2))
    names = [n for n, _ in runs]
    laps = [e.loc[e["complete"], "lap_time_s"].dropna().to_numpy() for _, e in runs]
    data = [lap if len(lap) else np.array([np.nan]) for lap in laps]
    axes[0].boxplot(data, tick_labels=names, showmeans=True)
    if limit_lap_s:
        axes[0].axhline(limit_lap_s, color="#1f77b4", ls="--", label=f"limit {limit_lap_s:.2f} s")
        axes[0].legend()
    axes[0].set_ylabel("evaluation lap time (s)")
    rates = [100 * float(e["complete"].mean()) if len(e) else 0.0 for _, e in runs]
    axes[1].bar(names, rates, color="#2ca02c")
    axes[1].set_ylabel("evaluation laps completed (%)")
    axes[1].set_ylim(0, 105)
    for ax in axes:
        ax.grid(alpha=0.3, axis="y")
        ax.tick_params(axis="x", labelrotation=20)
    fig.tight_layout()
    return save(fig, path)
