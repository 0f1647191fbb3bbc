"""The Track type and DeepRacer `.npy` route files (read, write, byte-exact round trip).

A route file is a float64 array of shape (N, 6), one row per waypoint, metres:
centre x,y | inner border x,y | outer border x,y. Row order is the driving direction and
row 0 is the start/finish line. A loop repeats its first row as its last row (that is how
DeepRacer tells a loop from an open line), and "inner" is the border inside the loop,
whatever the driving direction.

`Track` stores the three polylines exactly as the file has them: for a closed track the
arrays KEEP the repeated last row, so `center[-1] == center[0]`, `to_array()` rebuilds the
file's array bit for bit, and indices into `center` are the indices DeepRacer's
`params['waypoints']` and `params['closest_waypoints']` use. `n_points` counts distinct
waypoints (a loop's repeated row counted once).
"""

from __future__ import annotations

import io
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from tracks.errors import TrackFileError, TrackValidationError
from tracks.files import atomic_write
from tracks.validation import check_array, check_polylines, signed_area


@dataclass(frozen=True, eq=False)
class Track:
    """A race track: centre line and both borders in driving order, metres.

    Arrays are read-only float64 (N, 2); for loops the last row repeats the first.
    Construction validates the geometry and raises `TrackValidationError` when it is bad.
    """

    name: str
    """Short identifier, e.g. `reinvent_base` or a catalogue name."""
    center: np.ndarray
    """Centre line (N, 2) in driving order; row 0 is the start/finish line."""
    inner: np.ndarray
    """Inner border (N, 2): the border inside the loop, row-aligned with `center`."""
    outer: np.ndarray
    """Outer border (N, 2), row-aligned with `center`."""
    closed: bool
    """True for a loop (the last row repeats the first), False for an open line."""
    description: str = ""
    """One-line human description."""
    source: str = ""
    """Where the track came from: a file path, `catalogue`, `generator seed=...`."""
    allow_repeated_rows: bool = field(default=True, repr=False)
    """Accept exact repeated rows (official DeepRacer files have some); see validation."""

    def __post_init__(self) -> None:
        where = self.where
        arrays = []
        for label in ("center", "inner", "outer"):
            value = np.array(getattr(self, label), dtype=np.float64, copy=True, order="C")
            if value.ndim != 2 or value.shape[1] != 2:
                raise TrackValidationError(
                    f"{where}: {label} has shape {value.shape}, expected (N, 2) in metres"
                )
            arrays.append(value)
        if not (len(arrays[0]) == len(arrays[1]) == len(arrays[2])):
            raise TrackValidationError(
                f"{where}: centre, inner and outer have {[len(a) for a in arrays]} rows; "
                "they must be row-aligned (same length)"
            )
        check_array(np.hstack(arrays), where)
        check_polylines(
            arrays[0], arrays[1], arrays[2], bool(self.closed), where, self.allow_repeated_rows
        )
        for label, value in zip(("center", "inner", "outer"), arrays, strict=True):
            value.setflags(write=False)
            object.__setattr__(self, label, value)
        object.__setattr__(self, "closed", bool(self.closed))

    @classmethod
    def from_array(
        cls, array: np.ndarray, name: str, description: str = "", source: str = ""
    ) -> Track:
        """Build a track from a DeepRacer (N, 6) route array (loop iff first row == last)."""
        where = source or name
        array = check_array(array, where)
        if len(array) < 2:
            raise TrackValidationError(
                f"{where}: only {len(array)} row(s), at least 4 waypoints are needed"
            )
        closed = bool(np.array_equal(array[0], array[-1]))
        return cls(
            name=name,
            center=array[:, 0:2],
            inner=array[:, 2:4],
            outer=array[:, 4:6],
            closed=closed,
            description=description,
            source=source,
        )

    @classmethod
    def from_loop(
        cls,
        name: str,
        center: np.ndarray,
        inner: np.ndarray,
        outer: np.ndarray,
        description: str = "",
        source: str = "",
    ) -> Track:
        """Build a closed track from polylines WITHOUT the repeated last row (appended here).

        Authored and generated tracks use this; repeated rows are refused for them.
        """
        arrays = [np.asarray(a, dtype=np.float64) for a in (center, inner, outer)]
        arrays = [np.vstack([a, a[:1]]) for a in arrays]
        return cls(
            name=name,
            center=arrays[0],
            inner=arrays[1],
            outer=arrays[2],
            closed=True,
            description=description,
            source=source,
            allow_repeated_rows=False,
        )

    @property
    def where(self) -> str:
        """How error messages name this track: its file, or its name and origin."""
        if self.source.endswith(".npy"):
            return self.source
        return f"track {self.name!r} ({self.source})" if self.source else f"track {self.name!r}"

    def to_array(self) -> np.ndarray:
        """The DeepRacer (N, 6) float64 route array (bit-identical to the file it came from)."""
        return np.ascontiguousarray(np.hstack([self.center, self.inner, self.outer]))

    @property
    def direction(self) -> str:
        """'ccw' or 'cw' for loops (sign of the centre line's area), 'open' otherwise."""
        if not self.closed:
            return "open"
        return "ccw" if signed_area(self.center) > 0 else "cw"

    @property
    def waypoints(self) -> list[tuple[float, float]]:
        """Centre line as DeepRacer's `params['waypoints']`: (x, y) tuples in driving order;
        for loops the last repeats the first."""
        return [(float(x), float(y)) for x, y in self.center]

    @property
    def n_points(self) -> int:
        """Number of waypoints, a loop's repeated closing row counted once (exact repeated
        rows inside a DeepRacer file count as they appear)."""
        return len(self.center) - 1 if self.closed else len(self.center)

    @property
    def widths_m(self) -> np.ndarray:
        """Row-wise distance between the inner and the outer border point, metres."""
        return np.linalg.norm(self.inner - self.outer, axis=1)

    @property
    def length_m(self) -> float:
        """Centre-line polyline length, metres (DeepRacer's `track_length`)."""
        return float(np.linalg.norm(np.diff(self.center, axis=0), axis=1).sum())

    def reversed(self) -> Track:
        """The same track driven the other way: rows reversed, same start line, inner stays
        inner (as DeepRacer's reverse direction)."""
        return Track(
            name=f"{self.name}_reversed" if not self.name.endswith("_reversed") else self.name[:-9],
            center=self.center[::-1],
            inner=self.inner[::-1],
            outer=self.outer[::-1],
            closed=self.closed,
            description=self.description,
            source=self.source,
            allow_repeated_rows=self.allow_repeated_rows,
        )

    def __repr__(self) -> str:
        return (
            f"Track(name={self.name!r}, points={self.n_points}, closed={self.closed}, "
            f"direction={self.direction!r}, length_m={self.length_m:.3f})"
        )


def load_npy(path: str | os.PathLike, name: str | None = None) -> Track:
    """Read and validate a DeepRacer route file; the name defaults to the file's stem."""
    path = Path(path)
    if not path.exists():
        raise TrackFileError(f"{path}: no such track file; check the path")
    if path.is_dir():
        raise TrackFileError(f"{path}: is a directory, expected a .npy route file")
    try:
        array = np.load(path, allow_pickle=False)
    except ValueError as exc:
        raise TrackFileError(
            f"{path}: not a plain numpy .npy array ({str(exc).splitlines()[0]}); "
            "save the route with numpy.save(path, array) on a float64 (N, 6) array"
        ) from exc
    except (OSError, EOFError) as exc:
        raise TrackFileError(
            f"{path}: cannot read as a .npy file ({exc}); is it a numpy route file?"
        ) from exc
    if not isinstance(array, np.ndarray):
        raise TrackFileError(f"{path}: holds a {type(array).__name__}, expected one .npy array")
    return Track.from_array(array, name=name or path.stem, source=str(path))


def save_npy(track: Track, path: str | os.PathLike) -> Path:
    """Write the track as a DeepRacer route file, atomically (temp file, fsync, rename)."""
    path = Path(path)
    if path.suffix != ".npy":
        raise TrackFileError(f"{path}: a route file must end in .npy; use {path.stem}.npy")
    directory = path.parent if str(path.parent) else Path(".")
    if not directory.is_dir():
        raise TrackFileError(f"{path}: directory {directory} does not exist; create it first")
    buf = io.BytesIO()
    np.save(buf, track.to_array(), allow_pickle=False)
    return atomic_write(path, buf.getvalue())
