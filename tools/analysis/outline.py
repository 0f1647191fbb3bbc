"""The track outline drawn under logged positions, and its racing line.

Which track a run used is taken, in order, from: the `--track` option (a catalogue name
or a DeepRacer `.npy` route file), the name the run folder declares (openracer's
config.json, deepracer-for-cloud's WORLD_NAME, the console's robomaker log), and last the
catalogue track whose length matches the simtrace `track_len` column within 2 cm. The
racing line and its limit lap time come from `tracks.racing_line` when that is available.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from tools.analysis.errors import TrackNotFoundError


@dataclass(frozen=True)
class Outline:
    """Track polylines for plotting, metres, in driving order."""

    name: str
    """Track name (catalogue name or file stem)."""
    center: np.ndarray
    """Centre line (N, 2)."""
    inner: np.ndarray
    """Inner border (N, 2)."""
    outer: np.ndarray
    """Outer border (N, 2)."""
    racing_line: np.ndarray | None = None
    """Racing line (M, 2), if computed."""
    limit_lap_s: float | None = None
    """Lap time of the racing line at the car's limits (seconds), if computed."""

    @property
    def length_m(self) -> float:
        """Centre-line length, metres."""
        d = np.diff(self.center, axis=0)
        return float(np.hypot(d[:, 0], d[:, 1]).sum())


def _from_array(name: str, array: np.ndarray) -> Outline:
    array = np.asarray(array, dtype=np.float64)
    if array.ndim != 2 or array.shape[1] != 6:
        raise TrackNotFoundError(f"{name}: a route file must be (N, 6), got {array.shape}")
    return Outline(name, array[:, 0:2], array[:, 2:4], array[:, 4:6])


def _catalogue():
    try:
        from tracks import catalogue  # type: ignore[attr-defined]
    except ImportError:
        return None
    return catalogue


def _from_track(track, name: str) -> Outline:
    return Outline(
        name,
        np.asarray(track.center, dtype=np.float64),
        np.asarray(track.inner, dtype=np.float64),
        np.asarray(track.outer, dtype=np.float64),
    )


def load_outline(spec: str) -> Outline:
    """A catalogue name or a `.npy` route file -> its outline (no racing line)."""
    path = Path(spec).expanduser()
    if path.suffix == ".npy" or path.is_file():
        try:
            return _from_array(path.stem, np.load(path))
        except (OSError, ValueError) as exc:
            raise TrackNotFoundError(f"{path}: cannot read a DeepRacer route file ({exc})") from exc
    catalogue = _catalogue()
    if catalogue is None:
        raise TrackNotFoundError(
            f"track {spec!r}: the track catalogue is not available; pass a .npy route file"
        )
    try:
        track = catalogue.resolve(spec)
    except Exception as exc:  # the catalogue raises its own typed error naming the choices
        raise TrackNotFoundError(str(exc)) from exc
    return _from_track(track, spec)


def find_outline(
    explicit: str | None, hint: str | None, track_length_m: float | None
) -> tuple[Outline | None, str]:
    """The run's outline and how it was found ('' and None when nothing matched)."""
    if explicit:
        return load_outline(explicit), f"--track {explicit}"
    if hint:
        try:
            return load_outline(hint), f"declared by the run ({hint})"
        except TrackNotFoundError:
            pass
    catalogue = _catalogue()
    if catalogue is not None and track_length_m:
        for name in catalogue.names():
            try:
                outline = load_outline(name)
            except TrackNotFoundError:
                continue
            if abs(outline.length_m - track_length_m) < 0.02:
                return outline, f"matched by length {track_length_m:.2f} m"
    return None, ""


def with_racing_line(outline: Outline) -> Outline:
    """The outline plus its racing line and limit lap time, when `tracks.racing_line`
    can compute them (left unchanged otherwise)."""
    try:
        from tracks import racing_line  # type: ignore[attr-defined]
        from tracks.track import Track
    except ImportError:
        return outline
    try:
        track = Track(
            name=outline.name,
            center=outline.center,
            inner=outline.inner,
            outer=outline.outer,
            closed=bool(np.allclose(outline.center[0], outline.center[-1])),
        )
        line = racing_line.compute(track)
    except Exception:  # a racing line is a nicety; never fail a report over it
        return outline
    points = np.asarray(line.points, dtype=np.float64)
    if getattr(line, "closed", False) and len(points):
        points = np.vstack([points, points[:1]])
    lap = getattr(line, "limit_lap_time_s", None)
    return Outline(
        outline.name,
        outline.center,
        outline.inner,
        outline.outer,
        points if points.ndim == 2 else None,
        float(lap) if lap is not None else None,
    )
