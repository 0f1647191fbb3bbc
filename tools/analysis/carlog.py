"""Car run logs from `racer drive` (real car or simulated): load, measure, plot, replay.

A run log is the folder `vehicle.runlog.RunLog` writes: `run.jsonl` (a header line, then
one object per control-loop frame), `summary.json` when the drive ends, and optionally
the saved camera frames. Nested objects are flattened to dotted keys. The reader reads
one schema, `vehicle.runlog.SCHEMA_VERSION` (1), named in the header line
`{"kind": "run", "schema_version": 1, ...}`:

- header: `rate_hz` (the control rate; without it, the records' median period);
- per frame: `t_s` (wall clock, s), `loop_ms` (capture to command sent),
  `stages.<name>` (ms), `deadline_miss`, `link_errors` (a running count), `battery_v`,
  `steer_deg`, `speed_mps`, `steer_us`, `throttle_us`, `frame_file` (a saved frame,
  relative to the folder).

Logs written before the schema (no `schema_version`) still load: `_legacy_log`, the one
place that knows the spellings earlier writers used, maps them onto these fields.

`analyze_car_log` writes the figures, an optional MP4 replay of the saved frames with the
model's actions overlaid, and `report.html`.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from tools.analysis.errors import CarLogError
from vehicle.runlog import SCHEMA_VERSION

_STAGES = "stages."
"""Prefix of the per-stage timings (ms) in schema 1."""


@dataclass
class CarLog:
    """One `racer drive` run log, in schema 1 field names whatever the file's version."""

    root: Path
    """The run-log folder."""
    jsonl: Path
    """The JSON-lines file."""
    records: pd.DataFrame
    """One row per frame, nested keys flattened with dots."""
    header: dict[str, Any] = field(default_factory=dict)
    """The run header (`{"kind": "run", ...}`: model, rate, calibration), if present."""
    end: dict[str, Any] = field(default_factory=dict)
    """The closing summary (`summary.json`), if the run ended cleanly."""
    frames_dir: Path | None = None
    """Folder of saved frames, if any."""
    schema_version: int | None = SCHEMA_VERSION
    """The file's schema; None for a log from before run logs had one (read through the
    legacy mapping)."""


def _jsonl_of(path: Path) -> Path | None:
    if path.is_file() and path.suffix == ".jsonl":
        return path
    if path.is_dir():
        if (path / "run.jsonl").is_file():
            return path / "run.jsonl"
        files = sorted(path.glob("*.jsonl"))
        if files:
            return max(files, key=lambda p: p.stat().st_size)
    return None


def is_car_log(path: Path) -> bool:
    """True for a JSONL file or a folder holding one (and no DeepRacer simtrace)."""
    path = Path(path)
    if path.is_dir() and ((path / "training-simtrace").is_dir() or (path / "sim-trace").is_dir()):
        return False
    return _jsonl_of(path) is not None


def _flatten(obj: Any, prefix: str = "", out: dict | None = None) -> dict:
    out = {} if out is None else out
    if isinstance(obj, dict):
        for k, v in obj.items():
            _flatten(v, f"{prefix}{k}.", out)
    else:
        out[prefix[:-1]] = obj
    return out


def _read_objects(jsonl: Path) -> list[tuple[int, dict[str, Any]]]:
    """(line number, object) for every line; a torn last line (a crash) is skipped."""
    out: list[tuple[int, dict[str, Any]]] = []
    with jsonl.open(encoding="utf-8") as fh:
        for n, line in enumerate(fh, 1):
            line = line.strip()
            if not line:
                continue
            try:
                obj = json.loads(line)
            except json.JSONDecodeError as exc:
                if n > 1 and not fh.readline():  # a torn last line after a crash: skip it
                    break
                raise CarLogError(f"{jsonl}:{n}: not JSON ({exc.msg}); is this a run log?") from exc
            if not isinstance(obj, dict):
                raise CarLogError(f"{jsonl}:{n}: expected a JSON object per line")
            out.append((n, obj))
    return out


def load_car_log(path: str | Path) -> CarLog:
    """Read a run log folder (or its .jsonl file): schema 1, or a log from before the
    schema through the legacy mapping."""
    path = Path(path).expanduser()
    jsonl = _jsonl_of(path)
    if jsonl is None:
        raise CarLogError(f"{path}: no .jsonl run log found; give the folder `racer drive` wrote")
    objects = _read_objects(jsonl)
    first = objects[0][1] if objects else {}
    version = first.get("schema_version") if first.get("kind") == "run" else None
    root = jsonl.parent
    frames = root / "frames"
    frames_dir = frames if frames.is_dir() else None
    if version is None:
        header, records, end = _legacy_log(objects, frames_dir)
    elif version == SCHEMA_VERSION:
        header = {k: v for k, v in _flatten(first).items() if k != "kind"}
        rows = []
        for n, obj in objects[1:]:
            if "kind" in obj:
                raise CarLogError(
                    f"{jsonl}:{n}: a {obj['kind']!r} record inside a schema {version} run "
                    "log, which has one header line and then frame records only"
                )
            rows.append(_flatten(obj))
        records, end = pd.DataFrame(rows), {}
    else:
        raise CarLogError(
            f"{jsonl}: run log schema_version {version!r}; this openracer reads schema "
            f"{SCHEMA_VERSION} (and older logs without one); analyze it with the openracer "
            "that wrote it, or upgrade"
        )
    if records.empty:
        raise CarLogError(f"{jsonl}: holds no frame records; was the drive stopped at once?")
    summary_file = root / "summary.json"
    if not end and summary_file.is_file():  # the drive loop's closing summary
        try:
            loaded = json.loads(summary_file.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise CarLogError(
                f"{summary_file}: unreadable ({exc}); move it aside to analyze the frames alone"
            ) from exc
        if isinstance(loaded, dict):
            end = {k: v for k, v in _flatten(loaded).items() if k != "kind"}
    return CarLog(root, jsonl, records, header, end, frames_dir, version)


def _numeric(df: pd.DataFrame, name: str) -> pd.Series | None:
    """Column `name` as numbers (booleans kept); None when absent or never set."""
    if name not in df.columns:
        return None
    col = df[name] if df[name].dtype == bool else pd.to_numeric(df[name], errors="coerce")
    return col if col.notna().any() else None


@dataclass
class CarSeries:
    """The quantities of a car log on a common time axis (NaN where not logged)."""

    t_s: np.ndarray
    latency_ms: np.ndarray | None
    stages_ms: dict[str, np.ndarray]
    period_ms: float
    deadline_miss: np.ndarray
    link_errors: np.ndarray | None
    battery_v: np.ndarray | None
    steer_deg: np.ndarray | None
    speed_mps: np.ndarray | None
    steer_us: np.ndarray | None
    throttle_us: np.ndarray | None


def series(log: CarLog) -> CarSeries:
    """Every quantity of the records, by its schema 1 name (see the module docstring)."""
    df = log.records
    t = _numeric(df, "t_s")
    if t is None:
        raise CarLogError(
            f"{log.jsonl}: no t_s (wall-clock seconds) in the frame records; is this a "
            "`racer drive` run log?"
        )
    t_s = t.to_numpy(dtype=float)
    t_s = t_s - np.nanmin(t_s)
    stages = {}
    for col in df.columns:
        if col.startswith(_STAGES):
            values = _numeric(df, col)
            if values is not None:
                stages[col[len(_STAGES) :]] = values.to_numpy(dtype=float)

    def arr(name: str) -> np.ndarray | None:
        c = _numeric(df, name)
        return c.to_numpy(dtype=float) if c is not None else None

    latency = arr("loop_ms")
    rate = log.header.get("rate_hz")
    if rate is None and len(t_s) > 2:
        rate = 1.0 / float(np.nanmedian(np.diff(t_s)))
    period_ms = 1000.0 / float(rate or 15.0)
    miss = _numeric(df, "deadline_miss")
    if miss is not None:
        deadline_miss = miss.fillna(False).astype(bool).to_numpy()
    elif latency is not None:
        deadline_miss = np.nan_to_num(latency, nan=0.0) > period_ms
    else:
        deadline_miss = np.zeros(len(df), bool)
    return CarSeries(
        t_s=t_s,
        latency_ms=latency,
        stages_ms=stages,
        period_ms=period_ms,
        deadline_miss=deadline_miss,
        link_errors=arr("link_errors"),
        battery_v=arr("battery_v"),
        steer_deg=arr("steer_deg"),
        speed_mps=arr("speed_mps"),
        steer_us=arr("steer_us"),
        throttle_us=arr("throttle_us"),
    )


# ---- legacy: run logs from before `schema_version` ---------------------------------------
# The one place that knows the spellings earlier writers used. Each schema 1 field takes
# the first of its spellings that the log has; nothing outside this section guesses.

_LEGACY_FIELDS: dict[str, tuple[str, ...]] = {
    "t_s": ("t_s", "time_s", "timestamp_s", "timestamp", "t", "time", "wall_clock"),
    "loop_ms": ("loop_ms", "latency_ms", "total_ms", "frame_ms", "loop_latency_ms"),
    "deadline_miss": ("deadline_miss", "deadline_missed", "missed_deadline", "missed"),
    "link_errors": (
        "link_errors",
        "link.errors",
        "telemetry.link_errors",
        "link.error_count",
        "errors.link",
    ),
    "battery_v": (
        "battery_v",
        "telemetry.battery_v",
        "battery.voltage_v",
        "telemetry.vbat_v",
        "vbat_v",
    ),
    "steer_deg": (
        "steer_deg",
        "action.steer_deg",
        "steering_deg",
        "action.steering_angle",
        "steering_angle",
    ),
    "speed_mps": ("speed_mps", "action.speed_mps", "action.speed", "speed"),
    "steer_us": ("steer_us", "pulses.steer_us", "pulses.steering_us", "steering_us"),
    "throttle_us": ("throttle_us", "pulses.throttle_us", "pulses.motor_us", "motor_us"),
    "frame": ("frame", "index", "frame_index", "step", "i"),
}
_LEGACY_TIME_SCALED = (("t_ns", 1e-9), ("t_us", 1e-6), ("t_ms", 1e-3), ("monotonic_ns", 1e-9))
_LEGACY_STAGE_PREFIXES = ("stages.", "timings_ms.", "stage_ms.", "timings.", "stage_times_ms.")
_LEGACY_LINK_OK = ("link_ok", "link.ok", "telemetry.link_ok")
_LEGACY_FRAME_FILE = ("frame_path", "frame_file", "image", "image_path")
_LEGACY_RATE = ("rate_hz", "control_rate_hz", "meta.rate_hz")


def _first(df: pd.DataFrame, spellings: tuple[str, ...]) -> pd.Series | None:
    """The first of `spellings` the records have (as numbers), or None."""
    return next((c for c in (_numeric(df, s) for s in spellings) if c is not None), None)


def _legacy_log(
    objects: list[tuple[int, dict[str, Any]]], frames_dir: Path | None
) -> tuple[dict[str, Any], pd.DataFrame, dict[str, Any]]:
    """(header, records in schema 1 names, end) of a log without `schema_version`."""
    header: dict[str, Any] = {}
    end: dict[str, Any] = {}
    rows: list[dict[str, Any]] = []
    frame_keys = _LEGACY_FIELDS["loop_ms"] + _LEGACY_FIELDS["steer_deg"] + _LEGACY_FIELDS["frame"]
    for _n, obj in objects:
        flat = _flatten(obj)
        kind = flat.pop("kind", None)
        if kind == "run" or (
            kind is None and not rows and not header and not any(k in flat for k in frame_keys)
        ):
            header = flat
        elif kind == "end":
            end = flat
        else:
            rows.append(flat)
    df = pd.DataFrame(rows)
    out = pd.DataFrame(index=df.index)
    for name, spellings in _LEGACY_FIELDS.items():
        col = _first(df, spellings)
        if col is not None:
            out[name] = col
    if "t_s" not in out:
        for name, scale in _LEGACY_TIME_SCALED:
            if name in df:
                out["t_s"] = pd.to_numeric(df[name], errors="coerce") * scale
                break
    for col in df.columns:
        prefix = next((p for p in _LEGACY_STAGE_PREFIXES if col.startswith(p)), None)
        stage = None if prefix is None else _STAGES + col[len(prefix) :]
        if stage is not None and stage not in out and (values := _numeric(df, col)) is not None:
            out[stage] = values
    stage_cols = [c for c in out.columns if c.startswith(_STAGES)]
    if "loop_ms" not in out and stage_cols:
        out["loop_ms"] = np.nansum(out[stage_cols].to_numpy(dtype=float), axis=1)
    if "link_errors" not in out:
        ok = _first(df, _LEGACY_LINK_OK)
        if ok is not None:
            out["link_errors"] = np.cumsum(~ok.fillna(True).astype(bool).to_numpy()).astype(float)
    files = next((df[c] for c in _LEGACY_FRAME_FILE if c in df and df[c].notna().any()), None)
    if files is not None:
        out["frame_file"] = files
    elif frames_dir is not None:
        out["frame_file"] = _legacy_frame_files(out, frames_dir)
    rate = next((header[k] for k in _LEGACY_RATE if header.get(k) is not None), None)
    if rate is None:
        rate_col = _first(df, _LEGACY_RATE)
        rate = None if rate_col is None else float(rate_col.iloc[0])
    if rate is not None:
        header = {**header, "rate_hz": rate}
    return header, out, end


def _legacy_frame_files(records: pd.DataFrame, frames_dir: Path) -> list[str | None]:
    """Per record, its saved frame under `frames/`, matched by the index in the file name
    (to the record's `frame`, else its position)."""
    row_of = {}
    if "frame" in records:
        for i, v in enumerate(records["frame"]):
            if np.isfinite(v):
                row_of[int(v)] = i
    files: list[str | None] = [None] * len(records)
    for p in sorted(frames_dir.iterdir()):
        if p.suffix.lower() not in (".png", ".jpg", ".jpeg", ".npy", ".pgm"):
            continue
        m = re.findall(r"\d+", p.stem)
        if not m:
            continue
        idx = int(m[-1])
        row = row_of.get(idx, idx if idx < len(records) else None)
        if row is not None:
            files[row] = f"{frames_dir.name}/{p.name}"
    return files


def summarize_car(log: CarLog, s: CarSeries) -> dict[str, Any]:
    """Key figures: frames, duration, latency percentiles, deadline misses, link, battery."""
    out: dict[str, Any] = {
        "run": str(log.root),
        "frames": int(len(s.t_s)),
        "duration_s": round(float(s.t_s[-1]), 3) if len(s.t_s) else 0.0,
        "period_ms": round(s.period_ms, 3),
        "loop_rate_hz": round(float((len(s.t_s) - 1) / s.t_s[-1]), 3) if s.t_s[-1] > 0 else None,
        "deadline_misses": int(s.deadline_miss.sum()),
        "deadline_miss_rate": round(float(s.deadline_miss.mean()), 4),
    }
    if s.latency_ms is not None and np.isfinite(s.latency_ms).any():
        lat = s.latency_ms[np.isfinite(s.latency_ms)]
        out.update(
            latency_p50_ms=round(float(np.percentile(lat, 50)), 3),
            latency_p95_ms=round(float(np.percentile(lat, 95)), 3),
            latency_p99_ms=round(float(np.percentile(lat, 99)), 3),
            latency_max_ms=round(float(lat.max()), 3),
        )
    for name, values in s.stages_ms.items():
        if np.isfinite(values).any():
            out[f"stage_{name}_p50_ms"] = round(float(np.nanpercentile(values, 50)), 3)
    if s.link_errors is not None:
        errs = s.link_errors[np.isfinite(s.link_errors)]
        out["link_errors"] = int(errs.max() - errs.min()) if len(errs) else 0
    if isinstance(log.end.get("link_errors"), int | float):
        # the car's own count also covers what happened after the last frame record
        out["link_errors"] = max(int(out.get("link_errors", 0)), int(log.end["link_errors"]))
    for key in ("stop_reason", "firmware_failsafes", "camera_stalls", "inference_errors"):
        if key in log.end:
            out[key] = log.end[key]
    if s.battery_v is not None and np.isfinite(s.battery_v).any():
        b = s.battery_v[np.isfinite(s.battery_v)]
        out.update(
            battery_start_v=round(float(b[0]), 3),
            battery_end_v=round(float(b[-1]), 3),
            battery_min_v=round(float(b.min()), 3),
        )
    return out


def plot_car(log: CarLog, s: CarSeries, out_dir: Path) -> list[tuple[Path, str]]:
    """The car-log figures (PNG paths with captions)."""
    from tools.analysis import plots

    plt = plots.plt
    figs: list[tuple[Path, str]] = []
    if s.latency_ms is not None:
        lat = s.latency_ms
        fig, ax = plt.subplots(figsize=(9, 3.6))
        finite = lat[np.isfinite(lat)]
        ax.hist(finite, bins=60, color="#1f77b4")
        ax.axvline(s.period_ms, color="#d62728", ls="--", label=f"deadline {s.period_ms:.1f} ms")
        for q, ls in ((50, ":"), (99, "-.")):
            v = float(np.percentile(finite, q))
            ax.axvline(v, color="black", ls=ls, lw=1, label=f"p{q} {v:.1f} ms")
        ax.set_xlabel("loop latency (ms)")
        ax.set_ylabel("frames")
        ax.set_title("Loop latency")
        ax.legend()
        ax.grid(alpha=0.3)
        figs.append(
            (
                plots.save(fig, out_dir / "latency_hist.png"),
                "Loop latency histogram with the control period as deadline.",
            )
        )
        fig, ax = plt.subplots(figsize=(11, 3.8))
        if s.stages_ms:
            names = list(s.stages_ms)
            stack = np.vstack([np.nan_to_num(s.stages_ms[n]) for n in names])
            ax.stackplot(s.t_s, stack, labels=names, alpha=0.8)
        ax.plot(s.t_s, lat, color="black", lw=0.6, label="loop total")
        miss = s.deadline_miss
        if miss.any():
            ax.scatter(
                s.t_s[miss],
                np.nan_to_num(lat[miss]),
                color="#d62728",
                s=12,
                zorder=3,
                label=f"deadline miss ({int(miss.sum())})",
            )
        ax.axhline(s.period_ms, color="#d62728", ls="--", lw=1)
        ax.set_xlabel("time (s)")
        ax.set_ylabel("ms")
        ax.set_title("Latency over time (stages stacked)")
        ax.legend(loc="upper left", bbox_to_anchor=(1.0, 1.0), frameon=False, fontsize=8)
        ax.grid(alpha=0.3)
        figs.append(
            (
                plots.save(fig, out_dir / "latency_time.png"),
                "Loop latency over time, the stage timings stacked, deadline misses in red.",
            )
        )
    panels = [
        p
        for p in (
            (s.battery_v, "battery (V)", "#2ca02c"),
            (s.link_errors, "link errors (count)", "#d62728"),
        )
        if p[0] is not None
    ]
    if panels:
        fig, axes = plt.subplots(
            len(panels), 1, figsize=(11, 2.8 * len(panels)), sharex=True, squeeze=False
        )
        for ax, (values, label, colour) in zip(axes[:, 0], panels, strict=True):
            ax.plot(s.t_s, values, color=colour)
            ax.set_ylabel(label)
            ax.grid(alpha=0.3)
        axes[-1, 0].set_xlabel("time (s)")
        figs.append(
            (
                plots.save(fig, out_dir / "battery_link.png"),
                "Battery voltage and link errors over the run.",
            )
        )
    traces = [
        p
        for p in (
            (s.steer_deg, "steering (deg)"),
            (s.speed_mps, "speed (m/s)"),
            (s.steer_us, "steering pulse (µs)"),
            (s.throttle_us, "throttle pulse (µs)"),
        )
        if p[0] is not None
    ]
    if traces:
        fig, axes = plt.subplots(
            len(traces), 1, figsize=(11, 2.3 * len(traces)), sharex=True, squeeze=False
        )
        for ax, (values, label) in zip(axes[:, 0], traces, strict=True):
            ax.plot(s.t_s, values, lw=0.8, drawstyle="steps-post")
            ax.set_ylabel(label, fontsize=9)
            ax.grid(alpha=0.3)
        axes[-1, 0].set_xlabel("time (s)")
        figs.append(
            (
                plots.save(fig, out_dir / "controls.png"),
                "Commanded steering and speed, and the pulse widths sent to the servo and ESC.",
            )
        )
    return figs


def _frame_files(log: CarLog) -> list[tuple[int, Path]]:
    """(record row, frame file) pairs of the saved frames (`frame_file`)."""
    if "frame_file" not in log.records:
        return []
    out = []
    for i, rel in enumerate(log.records["frame_file"]):
        if isinstance(rel, str) and rel:
            p = (log.root / rel) if not Path(rel).is_absolute() else Path(rel)
            if p.is_file():
                out.append((i, p))
    return out


def _read_frame(path: Path) -> np.ndarray | None:
    import cv2

    if path.suffix.lower() == ".npy":
        arr = np.load(path)
        return (
            arr.reshape(arr.shape[0], arr.shape[1], -1)[..., 0]
            if arr.ndim == 3 and arr.shape[2] == 1
            else arr
        )
    return cv2.imread(str(path), cv2.IMREAD_UNCHANGED)


def replay_video(log: CarLog, s: CarSeries, path: Path) -> dict[str, Any] | None:
    """MP4 of the saved frames with the commanded steering and speed overlaid."""
    from tools.analysis.replay import overlay_action, write_mp4

    pairs = _frame_files(log)
    if not pairs:
        return None
    max_steer = float(np.nanmax(np.abs(s.steer_deg))) if s.steer_deg is not None else 30.0
    max_speed = float(np.nanmax(s.speed_mps)) if s.speed_mps is not None else 1.0
    max_steer = max_steer if math.isfinite(max_steer) and max_steer > 0 else 30.0
    max_speed = max_speed if math.isfinite(max_speed) and max_speed > 0 else 1.0
    times = [s.t_s[r] for r, _ in pairs]
    fps = 1.0 / float(np.median(np.diff(times))) if len(times) > 2 else 15.0
    fps = float(np.clip(fps, 1.0, 60.0))

    def frames():
        for row, p in pairs:
            img = _read_frame(p)
            if img is None:
                continue
            steer = s.steer_deg[row] if s.steer_deg is not None else None
            speed = s.speed_mps[row] if s.speed_mps is not None else None
            lat = s.latency_ms[row] if s.latency_ms is not None else float("nan")
            text = f"t={s.t_s[row]:6.2f}s  steer {steer if steer is not None else float('nan'):+5.1f}  v {speed if speed is not None else float('nan'):.2f}  {lat:.0f}ms"
            yield overlay_action(img, steer, speed, max_steer, max_speed, text)

    return write_mp4(frames(), path, fps)


def analyze_car_log(log: CarLog, out_dir: Path, video: bool = True) -> dict[str, Any]:
    """Figures, optional MP4 replay and report.html for a car run log; key figures."""
    from tools.analysis.report import Report
    from vehicle.files import atomic_write_json

    out_dir = Path(out_dir)
    if out_dir.resolve() == log.root.resolve():
        raise CarLogError(
            f"--out {out_dir} is the run log folder itself; the report would overwrite the "
            "car's summary.json, choose another folder (default: RUN/analysis)"
        )
    out_dir.mkdir(parents=True, exist_ok=True)
    s = series(log)
    summary = summarize_car(log, s)
    report = Report(f"openracer car run: {log.root.name}", str(log.jsonl))
    sec = report.section("Loop timing, link, battery and controls")
    for png, caption in plot_car(log, s, out_dir):
        sec.figure(png, caption)
    if video:
        result = replay_video(log, s, out_dir / "replay.mp4")
        if result is not None:
            summary["replay"] = result["path"]
            summary["replay_frames"] = result["frames"]
            report.section("Replay").link(
                out_dir / "replay.mp4",
                f"replay.mp4: {result['frames']} saved frames at {result['fps']:.1f} fps, with the model's actions",
            )
    if log.header:
        report.section("Run").table(
            ["field", "value"], [[k, str(v)] for k, v in log.header.items()]
        )
    report.figures = [
        (k.replace("_", " "), v) for k, v in summary.items() if k not in ("run", "replay")
    ]
    path = report.write(out_dir)
    summary["report"] = str(path)
    atomic_write_json(out_dir / "summary.json", summary)
    return summary
