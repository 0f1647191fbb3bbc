"""Run folders: find and load DeepRacer-format training and evaluation logs.

Reads the layouts deepracer-utils reads (compat reference section 2.2), in its priority
order, with our own parser so analysis works without deepracer-utils installed:

- `console`: old AWS console export, `sim-trace/training/training-simtrace/*.csv` plus
  `logs/training/*-robomaker.log` (SIM_TRACE_LOG lines are used if the CSVs are absent);
- `droa`: new console / DeepRacer-on-AWS export, `sim-trace/training/<ts>-<name>/...`
  (SIM_TRACE_LOG lines of `logs/training/*-simulation.log` if the CSVs are absent);
- `drfc`: deepracer-for-cloud single worker, and every openracer run
  (`training-simtrace/<N>-iteration.csv`, `evaluation-<ts>/evaluation-simtrace/`);
- `drfc-multi`: deepracer-for-cloud multiple workers, `<worker>/training-simtrace/`;
- `upload`: a model folder with only evaluations.

Step tables use deepracer-utils' internal column names (`x`, `y`, `steering_angle`,
`speed`, `on_track`, ...) plus `iteration`, `worker`, `unique_episode` (training) or
`stream` (evaluation), so code written against deepracer-utils reads them unchanged.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from tools.analysis.errors import LogFolderError
from vehicle.files import read_json

_CSV_RENAMES = {
    "X": "x",
    "Y": "y",
    "steer": "steering_angle",
    "throttle": "speed",
    "all_wheels_on_track": "on_track",
}
_LOG_FIELDS = (
    "episode",
    "steps",
    "x",
    "y",
    "yaw",
    "steering_angle",
    "speed",
    "action",
    "reward",
    "done",
    "on_track",
    "progress",
    "closest_waypoint",
    "track_len",
    "tstamp",
    "episode_status",
)
_NEEDED = ("episode", "steps", "x", "y", "reward", "progress", "tstamp", "episode_status")
_EVAL_DIR = re.compile(r"evaluation-([0-9]{14})$")


@dataclass
class RunLog:
    """Everything loaded from one run folder."""

    root: Path
    """The run folder."""
    layout: str
    """'drfc', 'drfc-multi', 'console', 'droa' or 'upload' (see the module docstring)."""
    training: pd.DataFrame | None
    """Training steps (one row per simtrace row), or None when the folder has none."""
    evaluation: pd.DataFrame | None
    """Evaluation steps of every evaluation (column `stream` names it), or None."""
    metrics: pd.DataFrame | None = None
    """Per-episode metrics from `metrics/TrainingMetrics.json`, or None."""
    metadata: dict[str, Any] | None = None
    """`model/model_metadata.json` (or the one at the root), or None."""
    hyperparameters: dict[str, Any] | None = None
    """`ip/hyperparameters.json` (or scraped from the robomaker log), or None."""
    reward_source: str | None = None
    """The reward function's source, when the folder keeps it."""
    track_hint: str | None = None
    """The track name the folder declares (config.json, DRfC params, robomaker log)."""
    config: dict[str, Any] | None = None
    """openracer's `config.json` of the run, when present."""
    imitation: dict[str, Any] | None = None
    """openracer runs: the imitation warm start's record (checkpoints/index.json), with
    one entry per DAgger round when there were any."""
    notes: list[str] = field(default_factory=list)
    """What was skipped or guessed while loading (shown in the report)."""
    archive: Path | None = None
    """The archive the folder was unpacked from, if it came as one."""

    @property
    def name(self) -> str:
        """The run's display name: its folder name (with the parent's for generic names
        such as `racer new`'s `MODEL/run`)."""
        if self.archive is not None:
            return self.archive.name.split(".")[0]
        name = self.root.resolve().name
        if name in ("run", "model", "logs") and self.root.resolve().parent.name:
            return f"{self.root.resolve().parent.name}/{name}"
        return name or str(self.root)

    @property
    def track_length_m(self) -> float | None:
        """Track length from the simtrace `track_len` column (metres), if logged."""
        for df in (self.training, self.evaluation):
            if df is not None and "track_len" in df and df["track_len"].notna().any():
                return float(df["track_len"].dropna().iloc[0])
        return None


def detect_layout(root: Path) -> str:
    """The folder's layout name, in deepracer-utils' priority order."""
    if (root / "sim-trace").is_dir():
        if (root / "sim-trace" / "training" / "training-simtrace").is_dir():
            return "console"
        return "droa"
    if (root / "training-simtrace").is_dir():
        return "drfc"
    if (root / "0" / "training-simtrace").is_dir():
        return "drfc-multi"
    if (root / "model").is_dir() or any(root.glob("evaluation-*/evaluation-simtrace")):
        return "upload"
    # an export that kept the training job's log but no sim-trace folder at all
    if any(root.glob("logs/training/*-simulation.log")):
        return "droa"
    if any(root.glob("logs/training/*-robomaker.log")):
        return "console"
    raise LogFolderError(
        f"{root}: no DeepRacer log layout found (looked for training-simtrace/, "
        "0/training-simtrace/, sim-trace/, model/); point at an openracer run folder, a "
        "deepracer-for-cloud model folder or an unpacked console export"
    )


ARCHIVE_SUFFIXES = (".tar.gz", ".tgz", ".tar", ".zip")
"""Archives `load_run` unpacks first (the console's "Download logs" gives a .tar.gz)."""


def unpack_archive(path: Path, into: Path) -> Path:
    """Unpack a log archive safely (no absolute paths, no `..`, no links) into `into`;
    returns the folder holding the model layout (the archive's single top folder, if any)."""
    import tarfile
    import zipfile

    into.mkdir(parents=True, exist_ok=True)
    try:
        if path.name.endswith(".zip"):
            with zipfile.ZipFile(path) as zf:
                for name in zf.namelist():
                    target = (into / name).resolve()
                    if not str(target).startswith(str(into.resolve())):
                        raise LogFolderError(f"{path}: member {name!r} escapes the archive")
                zf.extractall(into)
        else:
            with tarfile.open(path) as tf:
                tf.extractall(into, filter="data")
    except (tarfile.TarError, zipfile.BadZipFile, OSError) as exc:
        raise LogFolderError(f"{path}: cannot unpack the log archive ({exc})") from exc
    entries = [p for p in into.iterdir() if not p.name.startswith(".")]
    if len(entries) == 1 and entries[0].is_dir():
        return entries[0]
    return into


def load_run(path: str | Path) -> RunLog:
    """Load a run folder of any supported layout, or a .tar.gz / .zip of one."""
    root = Path(path).expanduser()
    if root.is_file() and root.name.endswith(ARCHIVE_SUFFIXES):
        import tempfile

        # everything is read into memory, so the unpacked copy goes when loading is done
        with tempfile.TemporaryDirectory(prefix="openracer-logs-") as scratch:
            folder = unpack_archive(root, Path(scratch))
            run = load_run(folder)
        run.notes.append(f"read from the archive {root}")
        run.root = root
        run.archive = root
        return run
    if not root.is_dir():
        raise LogFolderError(f"{root}: not a folder; give the run folder (e.g. runs/my-model)")
    layout = detect_layout(root)
    notes: list[str] = []
    training: pd.DataFrame | None
    evaluation: pd.DataFrame | None
    if layout == "drfc":
        training = _load_training_csvs(sorted((root / "training-simtrace").glob("*-iteration.csv")))
        evaluation = load_eval_dirs(root.glob("evaluation-*"))
    elif layout == "drfc-multi":
        files: list[tuple[int, Path]] = []
        for worker_dir in sorted(p for p in root.iterdir() if p.is_dir() and p.name.isdigit()):
            for f in sorted((worker_dir / "training-simtrace").glob("*-iteration.csv")):
                files.append((int(worker_dir.name), f))
        training = _load_training_csvs([f for _, f in files], workers=[w for w, _ in files])
        evaluation = load_eval_dirs(root.glob("evaluation-*"))
    elif layout == "console":
        csvs = sorted((root / "sim-trace" / "training" / "training-simtrace").glob("*.csv"))
        training = _load_training_csvs(csvs) if csvs else None
        if training is None:
            training = _load_robomaker_training(root, notes)
        evaluation = _load_console_evals(root / "sim-trace" / "evaluation")
    elif layout == "droa":
        csvs = sorted((root / "sim-trace" / "training").glob("*/training-simtrace/*-iteration.csv"))
        training = _load_training_csvs(csvs) if csvs else None
        if training is None:  # archives with the simulation log only (continuous actions)
            training = _load_robomaker_training(root, notes)
        evaluation = _load_console_evals(root / "sim-trace" / "evaluation")
    else:
        training = None
        evaluation = load_eval_dirs(root.glob("evaluation-*"))
    if training is None and evaluation is None:
        raise LogFolderError(
            f"{root}: layout {layout!r} but no simtrace CSV or SIM_TRACE_LOG lines found; "
            "was the run stopped before its first iteration was written?"
        )
    run = RunLog(root=root, layout=layout, training=training, evaluation=evaluation, notes=notes)
    run.metadata = _read_json_first(root, ["model/model_metadata.json", "model_metadata.json"])
    run.hyperparameters = run.hyperparameters or _read_json_first(
        root, ["ip/hyperparameters.json", "hyperparameters.json"]
    )
    run.config = _read_json_first(root, ["config.json"])
    index = _read_json_first(root, ["checkpoints/index.json"]) or {}
    run.imitation = index.get("imitation") if isinstance(index, dict) else None
    run.metrics = _load_metrics(root)
    for name in ("reward_function.py", "reward/reward_function.py"):
        if (root / name).is_file():
            run.reward_source = (root / name).read_text(encoding="utf-8", errors="replace")
            break
    run.track_hint = _track_hint(root, run.config)
    if layout == "console" and run.hyperparameters is None:
        run.hyperparameters = _robomaker_hyperparameters(root)
    return run


def _read_csv(path: Path) -> pd.DataFrame:
    try:
        df = pd.read_csv(path, encoding="utf8")
    except (OSError, ValueError, pd.errors.ParserError) as exc:
        raise LogFolderError(f"{path}: cannot read simtrace CSV ({exc})") from exc
    df = df.rename(columns=_CSV_RENAMES)
    missing = [c for c in _NEEDED if c not in df.columns]
    if missing:
        raise LogFolderError(
            f"{path}: simtrace CSV lacks column(s) {missing}; the header must be DeepRacer's "
            "SIM_TRACE_LOG columns (episode,steps,X,Y,yaw,steer,throttle,action,reward,...)"
        )
    if "obstacle_crash_counter" in df:
        df = df.drop(columns="obstacle_crash_counter")
    for col in ("wall_clock", "pause_duration"):
        if col not in df:
            df[col] = np.nan
    if "action" not in df or not pd.api.types.is_numeric_dtype(df["action"]):
        # continuous spaces log "[steer speed]"; deepracer-utils turns the column into -1
        df["action"] = -1
    for col in ("done", "on_track"):
        if col in df and df[col].dtype != bool:
            df[col] = df[col].astype(str).str.strip().str.lower() == "true"
    df["tstamp"] = pd.to_numeric(df["tstamp"], errors="coerce")
    df["episode_status"] = df["episode_status"].astype(str)
    return df


def _iteration_of(path: Path) -> int:
    match = re.match(r"(\d+)-iteration\.csv$", path.name)
    if not match:
        raise LogFolderError(f"{path}: simtrace files must be named <N>-iteration.csv")
    return int(match.group(1))


def _load_training_csvs(paths: list[Path], workers: list[int] | None = None) -> pd.DataFrame | None:
    if not paths:
        return None
    frames = []
    for k, path in enumerate(paths):
        df = _read_csv(path)
        df["iteration"] = _iteration_of(path)
        df["worker"] = workers[k] if workers else 0
        frames.append(df)
    df = pd.concat(frames, ignore_index=True)
    # One number per episode, in (iteration, worker, episode) order. deepracer-utils
    # derives it arithmetically from the first iteration's episode count, which merges
    # episodes when iterations hold different numbers of them; a dense rank never does.
    # Rows of one episode are contiguous in a file; a new episode also starts where the
    # step counter restarts (a writer that reused an episode number).
    df["_segment"] = _segments(df)
    keys = (
        df[["iteration", "worker", "episode", "_segment"]]
        .drop_duplicates()
        .sort_values(["iteration", "worker", "episode", "_segment"])
    )
    keys["unique_episode"] = np.arange(len(keys))
    df = df.merge(keys, on=["iteration", "worker", "episode", "_segment"], how="left")
    df = df.drop(columns="_segment")
    return df.sort_values(["unique_episode", "steps"]).reset_index(drop=True)


def _segments(df: pd.DataFrame) -> np.ndarray:
    """Running count of episode starts in file order (episode change or step restart)."""
    episode = df["episode"].to_numpy()
    steps = pd.to_numeric(df["steps"], errors="coerce").to_numpy()
    fresh = np.ones(len(df), bool)
    if len(df) > 1:
        fresh[1:] = (episode[1:] != episode[:-1]) | (steps[1:] <= steps[:-1])
    # a new file also starts a new segment
    for col in ("iteration", "worker"):
        v = df[col].to_numpy()
        fresh[1:] |= v[1:] != v[:-1]
    return np.cumsum(fresh)


def load_eval_dirs(dirs) -> pd.DataFrame | None:
    """The evaluation simtraces (`evaluation-simtrace/0-iteration.csv`) of DRfC
    `evaluation-<stamp>` folders as one frame, the stamp in its `stream` column; None when
    none of the folders holds one."""
    frames = []
    for d in sorted(dirs):
        match = _EVAL_DIR.search(d.name)
        csv = d / "evaluation-simtrace" / "0-iteration.csv"
        if match and csv.is_file():
            df = _read_csv(csv)
            df["iteration"] = 0
            df["worker"] = 0
            df["stream"] = match.group(1)
            frames.append(df)
    if not frames:
        return None
    return pd.concat(frames, ignore_index=True).sort_values(["stream", "episode", "steps"])


def _load_console_evals(base: Path) -> pd.DataFrame | None:
    frames = []
    if base.is_dir():
        for csv in sorted(base.glob("*/evaluation-simtrace/*-iteration.csv")):
            df = _read_csv(csv)
            df["iteration"] = 0
            df["worker"] = 0
            match = re.match(r"([0-9]{14})", csv.parent.parent.name)
            df["stream"] = match.group(1) if match else csv.parent.parent.name
            frames.append(df)
    if not frames:
        return None
    return pd.concat(frames, ignore_index=True).sort_values(["stream", "episode", "steps"])


def parse_sim_trace_lines(lines, episodes_per_iteration: int = 20) -> pd.DataFrame:
    """`SIM_TRACE_LOG:` lines of a robomaker/simulation log -> a training step table.

    Fields are read by position as deepracer-utils does; 17 fields carry the pause
    duration, 19 also the wall clock (18 is the ambiguous simapp variant: read as 17).
    """
    rows = []
    for line in lines:
        if "SIM_TRACE_LOG" not in line:
            continue
        body = line.split("SIM_TRACE_LOG:", 1)[-1].split("\t", 1)[0].strip()
        parts = body.split(",")
        if len(parts) < 16:
            continue
        row: dict[str, Any] = {}
        for name, raw in zip(_LOG_FIELDS, parts[:16], strict=True):
            row[name] = raw
        row["pause_duration"] = float(parts[16]) if len(parts) >= 17 else np.nan
        row["wall_clock"] = float(parts[18]) if len(parts) >= 19 else np.nan
        rows.append(row)
    if not rows:
        return pd.DataFrame(columns=[*_LOG_FIELDS, "iteration", "worker", "unique_episode"])
    df = pd.DataFrame(rows)
    for col in ("x", "y", "yaw", "steering_angle", "speed", "reward", "progress", "track_len"):
        df[col] = pd.to_numeric(df[col], errors="coerce")
    df["tstamp"] = pd.to_numeric(df["tstamp"], errors="coerce")
    df["episode"] = pd.to_numeric(df["episode"], errors="coerce").astype(int)
    df["steps"] = pd.to_numeric(df["steps"], errors="coerce")
    df["closest_waypoint"] = pd.to_numeric(df["closest_waypoint"], errors="coerce")
    df["action"] = pd.to_numeric(df["action"], errors="coerce").fillna(-1).astype(int)
    df["done"] = ~df["done"].astype(str).str.contains("False")
    df["on_track"] = ~df["on_track"].astype(str).str.contains("False")
    df["iteration"] = df["episode"] // max(1, episodes_per_iteration)
    df["worker"] = 0
    df["unique_episode"] = df["episode"]
    return df


def _load_robomaker_training(root: Path, notes: list[str]) -> pd.DataFrame | None:
    """Training steps from the SIM_TRACE_LOG lines of the training job's log: the console's
    `*-robomaker.log`, DeepRacer-on-AWS's `*-simulation.log` (as deepracer-utils'
    `load_robomaker_logs`)."""
    logs = sorted(root.glob("**/training/*-robomaker.log")) or sorted(
        root.glob("**/training/*-simulation.log")
    )
    if not logs:
        return None
    hyper = _robomaker_hyperparameters(root) or {}
    per_iter = int(hyper.get("num_episodes_between_training", 20))
    with logs[0].open(encoding="utf-8", errors="replace") as fh:
        df = parse_sim_trace_lines(fh, per_iter)
    notes.append(f"training steps read from SIM_TRACE_LOG lines of {logs[0].name}")
    return df if len(df) else None


def _robomaker_hyperparameters(root: Path) -> dict[str, Any] | None:
    for log in sorted(root.glob("**/training/*-robomaker.log")):
        text = log.read_text(encoding="utf-8", errors="replace")
        at = text.find("Using the following hyper-parameters")
        if at < 0:
            continue
        start = text.find("{", at)
        end = text.find("}", start)
        if start >= 0 and end > start:
            try:
                return json.loads(text[start : end + 1])
            except json.JSONDecodeError:
                return None
    return None


def _read_json_first(root: Path, names: list[str]) -> dict[str, Any] | None:
    for name in names:
        path = root / name
        if path.is_file():
            return read_json(path, what=path.name, error=LogFolderError)
    return None


def _load_metrics(root: Path) -> pd.DataFrame | None:
    path = root / "metrics" / "TrainingMetrics.json"
    if not path.is_file():
        return None
    data = read_json(path, what="DeepRacer metrics", error=LogFolderError)
    try:
        metrics = pd.DataFrame(data["metrics"])
    except (KeyError, TypeError, ValueError) as exc:
        raise LogFolderError(
            f"{path}: expected DeepRacer's metrics JSON with a 'metrics' list ({exc})"
        ) from exc
    return metrics if len(metrics) else None


_WORLD_NAME = re.compile(
    r"""(?:\* /WORLD_NAME: |['"]WORLD_NAME['"]: ['"]|\bWORLD_NAME=|\bDR_WORLD_NAME=)"""
    r"""['"]?([A-Za-z0-9][\w.-]*)"""
)
"""The track name as the logs print it: ` * /WORLD_NAME: x` (ROS parameters in console
robomaker logs), `'WORLD_NAME': 'x'` (the job's parameter dict in console and
DeepRacer-on-AWS simulation logs), `WORLD_NAME=x` (console logs), `DR_WORLD_NAME=x`
(deepracer-for-cloud's run.env)."""


def _track_hint(root: Path, config: dict[str, Any] | None) -> str | None:
    if config:
        track = config.get("track")
        if isinstance(track, list | tuple) and track:
            return str(track[0])
        if isinstance(track, str) and track:
            return track
    # deepracer-for-cloud keeps the training parameters (WORLD_NAME) beside the model
    for path in sorted(root.glob("*param*.y*ml")) + sorted(root.glob("**/*param*.y*ml")):
        match = re.search(r"WORLD_NAME:\s*['\"]?([\w.-]+)", path.read_text(errors="replace"))
        if match:
            return match.group(1)
    logs = [
        *sorted(root.glob("run.env")),
        *sorted(root.glob("**/*-robomaker.log")),
        *sorted(root.glob("**/*-simulation.log")),
    ]
    # training logs first: an evaluation may run on another track
    logs.sort(key=lambda p: "training" not in str(p.relative_to(root)))
    for log in logs:
        with log.open(encoding="utf-8", errors="replace") as fh:
            for k, line in enumerate(fh):
                if "WORLD_NAME" in line:
                    match = _WORLD_NAME.search(line)
                    if match:
                        return match.group(1)
                if k > 5000:
                    break
    return None
