"""Episodes and iterations: the summaries every figure and table of a report starts from.

`episode_table` reduces a step table (from `tools.analysis.logs`) to one row per episode:
steps, progress reached, total reward, time from the first to the last step (simulation
seconds; the `prepare` step counts as time zero, as in deepracer-utils), final status,
whether the lap was completed and the lap time if so. `iteration_table` reduces that to
one row per training iteration: mean reward and progress, completion rate, and the count
of every final status.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

STATUSES = ("lap_complete", "off_track", "crashed", "reversed", "immobilized", "time_up")
"""DeepRacer's terminal episode statuses (compat reference section 1.4)."""


def episode_key(df: pd.DataFrame) -> str:
    """The column identifying an episode: `unique_episode` (training) or `episode`."""
    return "unique_episode" if "unique_episode" in df.columns else "episode"


def episode_table(df: pd.DataFrame) -> pd.DataFrame:
    """One row per episode of a training or evaluation step table."""
    if df is None or len(df) == 0:
        return pd.DataFrame(
            columns=[
                "iteration",
                "episode",
                "stream",
                "steps",
                "progress",
                "reward",
                "time_s",
                "status",
                "complete",
                "lap_time_s",
                "mean_speed_mps",
                "start_waypoint",
                "off_track_steps",
            ]
        )
    key = episode_key(df)
    if "stream" in df.columns:
        groups = ["stream", key]
    else:
        groups = ["iteration", key]
        if "iteration" not in df.columns:
            df = df.assign(iteration=0)
    ordered = df.sort_values([*groups, "steps"])
    g = ordered.groupby(groups, sort=True)
    columns = {} if "iteration" in groups else {"iteration": g["iteration"].first()}
    out = pd.DataFrame(
        {
            **columns,
            "steps": g["steps"].count(),
            "progress": g["progress"].max().clip(upper=100.0),
            "reward": g["reward"].sum(),
            "time_s": g["tstamp"].last() - g["tstamp"].first(),
            "status": g["episode_status"].last(),
            "mean_speed_mps": g["speed"].mean() if "speed" in df else np.nan,
            "start_waypoint": g["closest_waypoint"].first() if "closest_waypoint" in df else 0,
            "off_track_steps": g["on_track"].apply(lambda s: int((~s.astype(bool)).sum()))
            if "on_track" in df
            else 0,
        }
    ).reset_index()
    out = out.rename(columns={key: "episode"})
    if "stream" not in out.columns:
        out["stream"] = ""
    out["complete"] = (out["status"] == "lap_complete") | (out["progress"] >= 100.0 - 1e-6)
    out["lap_time_s"] = np.where(out["complete"], out["time_s"], np.nan)
    return out


def iteration_table(episodes: pd.DataFrame) -> pd.DataFrame:
    """One row per iteration: means, completion rate and final-status counts."""
    if len(episodes) == 0:
        return pd.DataFrame(columns=["iteration", "episodes", "reward_mean", "progress_mean"])
    g = episodes.groupby("iteration")
    out = pd.DataFrame(
        {
            "episodes": g["episode"].count(),
            "reward_mean": g["reward"].mean(),
            "reward_std": g["reward"].std().fillna(0.0),
            "progress_mean": g["progress"].mean(),
            "progress_max": g["progress"].max(),
            "completion_rate": g["complete"].mean(),
            "best_lap_s": g["lap_time_s"].min(),
        }
    )
    for status in STATUSES:
        out[status] = g["status"].apply(lambda s, st=status: int((s == st).sum()))
    other = episodes[~episodes["status"].isin(STATUSES)]
    out["other"] = other.groupby("iteration")["episode"].count().reindex(out.index).fillna(0)
    return out.reset_index()


def best_laps(episodes: pd.DataFrame, n: int = 3) -> pd.DataFrame:
    """The `n` fastest completed laps (ties broken by reward), fastest first."""
    done = episodes[episodes["complete"]]
    return done.sort_values(["lap_time_s", "reward"], ascending=[True, False]).head(n)


def steps_of(df: pd.DataFrame, row: pd.Series) -> pd.DataFrame:
    """The step rows of one episode row of `episode_table(df)`."""
    key = episode_key(df)
    if "stream" in df.columns and row.get("stream", ""):
        mask = (df["stream"] == row["stream"]) & (df[key] == row["episode"])
    else:
        mask = (df["iteration"] == row["iteration"]) & (df[key] == row["episode"])
    return df[mask].sort_values("steps")
