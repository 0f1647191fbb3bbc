"""The drive loop's run log: one JSON line per frame, plus camera frames saved at a
reduced rate, in a folder that `racer analyze` and the replay camera read.

Layout of a run folder (schema 1, `SCHEMA_VERSION`):

    run.jsonl           first line: the run header ({"kind": "run", "schema_version": 1,
                        model, rate_hz, ...}); then one record per loop iteration (frame,
                        t_s, loop_ms, stages.{capture,preprocess,infer,command}, steer_deg,
                        speed_mps, steer_us, throttle_us, max_speed, deadline_miss,
                        link_errors, link, event, battery_v, telemetry.*, frame_file)
    summary.json        the drive's summary (stop reason, counters, p50/p99), at close
    frames/NNNNNN.png   saved camera frames (gray, as captured), every `frame_every`-th
    frames/frames.jsonl {"file", "t_s", "frame"} per saved frame (replay timing)

Runs on the car. Writing happens on a background thread so the loop never waits for the
SD card; records are flushed at least once a second and at close. A crash leaves at most
a torn last line, which the readers skip. `racer analyze` (tools/analysis/carlog.py) reads
this schema; a change to the record fields bumps `SCHEMA_VERSION`.
"""

from __future__ import annotations

import json
import queue
import threading
import time
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from vehicle.errors import RunLogError
from vehicle.files import atomic_write_json

SCHEMA_VERSION = 1
"""Version of the run-log format, written in the header line."""

_STOP = object()


class RunLog:
    """Writes one run folder. `record()` and `save_frame()` only enqueue."""

    def __init__(
        self,
        directory: str | Path,
        header: dict[str, Any],
        *,
        frame_every: int = 0,
        max_queue: int = 1000,
    ) -> None:
        """`frame_every`: save every n-th frame (0: none)."""
        self.dir = Path(directory)
        try:
            self.dir.mkdir(parents=True, exist_ok=True)
            if frame_every:
                (self.dir / "frames").mkdir(exist_ok=True)
            self._fh = open(self.dir / "run.jsonl", "a", encoding="utf-8")  # noqa: SIM115
        except OSError as exc:
            raise RunLogError(
                f"run log {self.dir}: cannot write ({exc.strerror}); choose another --log-dir"
            ) from exc
        self.frame_every = int(frame_every)
        self.dropped = 0
        """Records dropped because the writer fell behind (queue full)."""
        self.frames_saved = 0
        self._frames_index = (
            open(self.dir / "frames" / "frames.jsonl", "a", encoding="utf-8")  # noqa: SIM115
            if frame_every
            else None
        )
        self._q: queue.Queue[Any] = queue.Queue(maxsize=max_queue)
        head = {k: v for k, v in header.items() if k not in ("kind", "schema_version")}
        head = {"kind": "run", "schema_version": SCHEMA_VERSION, **head}
        self._fh.write(json.dumps(head, default=_json_default) + "\n")
        self._fh.flush()
        self._thread = threading.Thread(target=self._writer, name="runlog", daemon=True)
        self._thread.start()
        self._closed = False

    @property
    def path(self) -> Path:
        return self.dir / "run.jsonl"

    def wants_frame(self, index: int) -> bool:
        return bool(self.frame_every) and index % self.frame_every == 0

    def record(self, rec: dict[str, Any]) -> None:
        """Queue one record (a frame's timings, action, pulses, telemetry)."""
        self._put(("rec", rec))

    def save_frame(self, index: int, t_s: float, image: np.ndarray) -> str:
        """Queue a frame for saving; returns its path relative to the run folder."""
        rel = f"frames/{index:06d}.png"
        self._put(("img", (rel, index, t_s, image)))
        return rel

    def _put(self, item: Any) -> None:
        if self._closed:
            return
        try:
            self._q.put_nowait(item)
        except queue.Full:
            self.dropped += 1

    def close(self, summary: dict[str, Any] | None = None) -> None:
        """Write the end record, flush and close (waits for the queue to drain)."""
        if self._closed:
            return
        self._closed = True
        self._q.put(_STOP)
        self._thread.join(timeout=30.0)
        self._fh.close()
        if self._frames_index is not None:
            self._frames_index.close()
        if summary is not None:
            summary = {
                **summary,
                "records_dropped": self.dropped,
                "frames_saved": self.frames_saved,
            }
            atomic_write_json(self.dir / "summary.json", summary, default=_json_default)

    def _writer(self) -> None:
        last_flush = time.monotonic()
        while True:
            try:
                item = self._q.get(timeout=0.5)
            except queue.Empty:
                item = None
            if item is _STOP:
                self._fh.flush()
                if self._frames_index is not None:
                    self._frames_index.flush()
                return
            if item is not None:
                kind, payload = item
                try:
                    if kind == "rec":
                        self._fh.write(json.dumps(payload, default=_json_default) + "\n")
                    else:
                        rel, index, t_s, image = payload
                        cv2.imwrite(str(self.dir / rel), image)
                        assert self._frames_index is not None
                        self._frames_index.write(
                            json.dumps({"file": Path(rel).name, "t_s": t_s, "frame": index}) + "\n"
                        )
                        self.frames_saved += 1
                except (OSError, ValueError, cv2.error):
                    self.dropped += 1
            now = time.monotonic()
            if now - last_flush > 1.0:
                last_flush = now
                self._fh.flush()
                if self._frames_index is not None:
                    self._frames_index.flush()


def _json_default(obj: Any) -> Any:
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, Path):
        return str(obj)
    return str(obj)


def read_run(path: str | Path) -> list[dict[str, Any]]:
    """All records of a run log (folder or run.jsonl), the header first. A torn last line
    (a crash mid-write) is skipped; any other unreadable line raises `RunLogError`."""
    p = Path(path)
    if p.is_dir():
        p = p / "run.jsonl"
    try:
        lines = p.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise RunLogError(f"run log {p}: cannot read ({exc})") from exc
    out = []
    for n, line in enumerate(lines, 1):
        try:
            out.append(json.loads(line))
        except json.JSONDecodeError as exc:
            if n == len(lines):
                break
            raise RunLogError(
                f"run log {p}:{n}: not JSON ({exc.msg}); only the last line may be torn"
            ) from exc
    return out
