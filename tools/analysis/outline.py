"""The track outline drawn under logged positions, and its racing line.

Which track a run used is taken from the `--track` option (a catalogue name or a DeepRacer
`.npy` route file), else from the name the run declares (openracer's config.json,
deepracer-for-cloud's WORLD_NAME, the WORLD_NAME of console and DeepRacer-on-AWS logs),
which resolves through `tracks.catalogue`: a built-in track, or a DeepRacer route the user
imported under DeepRacer's name (`racer tracks import reinvent_base.npy --name
reinvent_base`). Nothing is guessed: when the run names no track, or names one openracer does not
have, `find_outline` says so, lists the tracks whose length matches the simtrace
`track_len` column, and asks for --track (tracks of one length can differ in shape: the
re:Invent 2018 track and `reinvent_like` are both 17.7 m). The racing line and its limit
lap time come from `tracks.racing_line` when that is available.
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
    """The run's outline and how it was found; (None, why and what to pass) when the run
    does not name a track openracer has (no guess by length)."""
    if explicit:
        return load_outline(explicit), f"--track {explicit}"
    if hint:
        try:
            return load_outline(hint), f"named by the run's logs ({hint})"
        except TrackNotFoundError:
            problem = (
                f"the logs name the track {hint!r}, which is not installed here (import "
                f"DeepRacer's route once: racer tracks import {hint}.npy --name {hint})"
            )
    else:
        problem = "the logs do not name their track"
    same = same_length_tracks(track_length_m) if track_length_m else []
    if same:
        listed = ", ".join(same[:8]) + (f" and {len(same) - 8} more" if len(same) > 8 else "")
        fit = f"tracks of the logged length {track_length_m:.2f} m: {listed}; "
    else:
        fit = ""
    return None, (
        f"track unknown: {problem}, so positions are drawn without borders and no limit lap "
        f"time is given; {fit}pass --track NAME or FILE.npy"
    )


def same_length_tracks(track_length_m: float, tolerance_m: float = 0.02) -> list[str]:
    """Catalogue track names (built-in and imported) whose centre line is `track_length_m` long
    (within `tolerance_m`): candidates to offer, never to pick."""
    catalogue = _catalogue()
    if catalogue is None:
        return []
    found = []
    for name in catalogue.names():
        try:
            track = catalogue.resolve(name)
        except Exception:  # a broken user track is not a candidate
            continue
        if abs(track.length_m - track_length_m) < tolerance_m:
            found.append(name)
    return found


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
