"""Validation of track data: every check a route array must pass before anything uses it.

Each failure raises `TrackValidationError` with a one-line message naming the source (file
or track name), the offending value and the fix. Checks, in order: shape and dtype, finite
values, enough points, repeated points, closure, positive width, inner border inside the
outer one, no self-intersecting centre line, no border crossing the other border or the
centre line, no border crossing itself.

Repeated rows: six of the official DeepRacer route files repeat one waypoint (the whole row,
centre and both borders, appears twice in a row) and the DeepRacer simulator accepts them,
so an exact repeated row is accepted (geometry skips the zero-length segment). A centre
point that repeats while its border points differ, or vice versa a row whose centre does not
move but whose borders do, has no consistent meaning and is rejected; so is any repeated
row when `allow_repeated_rows=False` (authored and generated tracks are checked that way).
"""

from __future__ import annotations

import numpy as np

from tracks.errors import TrackValidationError

MIN_WAYPOINTS = 4
"""Fewest distinct centre-line points a track may have (a loop counts its points once)."""

SAME_POINT_M = 1e-9
"""Two consecutive points closer than this (metres) are the same point."""

MIN_WIDTH_M = 1e-3
"""Narrowest allowed distance between an inner and an outer border point of one row."""


def check_array(array: object, source: str) -> np.ndarray:
    """Check the raw (N, 6) route array's type, shape and values; return it as ndarray."""
    if not isinstance(array, np.ndarray):
        raise TrackValidationError(
            f"{source}: expected a numpy array of shape (N, 6), got {type(array).__name__}; "
            "save the route with numpy.save(path, array)"
        )
    if array.dtype != np.float64:
        raise TrackValidationError(
            f"{source}: dtype is {array.dtype}, expected float64; "
            "convert with array.astype(numpy.float64) and save again"
        )
    if array.ndim != 2 or array.shape[1] != 6:
        raise TrackValidationError(
            f"{source}: shape is {array.shape}, expected (N, 6) with columns "
            "centre x,y | inner x,y | outer x,y in metres"
        )
    bad = ~np.isfinite(array)
    if bad.any():
        row, col = (int(v) for v in np.argwhere(bad)[0])
        raise TrackValidationError(
            f"{source}: {int(bad.sum())} non-finite value(s), first {array[row, col]!r} "
            f"at row {row} column {col}; replace NaN/inf with real coordinates"
        )
    return array


def check_polylines(
    center: np.ndarray,
    inner: np.ndarray,
    outer: np.ndarray,
    closed: bool,
    source: str,
    allow_repeated_rows: bool = True,
) -> None:
    """Check the geometry of a track given as three (N, 2) polylines (loops repeat row 0 last)."""
    rows = np.hstack([center, inner, outer])
    n = len(center)
    if closed and not np.array_equal(rows[0], rows[-1]):
        raise TrackValidationError(
            f"{source}: marked closed but the last row {rows[-1].tolist()} differs from the "
            f"first {rows[0].tolist()}; a loop repeats its first row as the last one"
        )
    if not closed and n >= 2 and np.array_equal(center[0], center[-1]):
        raise TrackValidationError(
            f"{source}: the centre line ends where it starts {center[0].tolist()} but the "
            "border points of the first and last rows differ; make the last row an exact "
            "copy of the first to close the loop"
        )
    distinct = n - 1 if closed else n
    step = np.linalg.norm(np.diff(center, axis=0), axis=1)
    same = step < SAME_POINT_M
    n_repeats = int(same.sum())
    if distinct - n_repeats < MIN_WAYPOINTS:
        raise TrackValidationError(
            f"{source}: only {distinct - n_repeats} distinct centre-line point(s), at least "
            f"{MIN_WAYPOINTS} are needed; add waypoints"
        )
    if n_repeats:
        row_same = np.all(np.diff(rows, axis=0) == 0.0, axis=1)
        partial = same & ~row_same
        if partial.any():
            i = int(np.flatnonzero(partial)[0])
            raise TrackValidationError(
                f"{source}: rows {i} and {i + 1} repeat the centre point "
                f"({center[i, 0]:.4f}, {center[i, 1]:.4f}) with different border points; "
                "delete one of the two rows"
            )
        if not allow_repeated_rows:
            i = int(np.flatnonzero(same)[0])
            raise TrackValidationError(
                f"{source}: rows {i} and {i + 1} are the same point "
                f"({center[i, 0]:.4f}, {center[i, 1]:.4f}); delete one of the two rows"
            )
    width = np.linalg.norm(inner - outer, axis=1)
    if width.min() < MIN_WIDTH_M:
        i = int(np.argmin(width))
        raise TrackValidationError(
            f"{source}: track width {width[i]:.6f} m at row {i} is not positive "
            f"(at least {MIN_WIDTH_M} m needed); move the inner or outer border point apart"
        )
    if closed:
        a_in, a_out = abs(signed_area(inner)), abs(signed_area(outer))
        if a_in >= a_out:
            raise TrackValidationError(
                f"{source}: the inner border (columns 2-3) encloses {a_in:.3f} m^2, more than "
                f"the outer border (columns 4-5, {a_out:.3f} m^2); the borders are swapped, "
                "exchange columns 2-3 with 4-5"
            )
    _check_no_crossing(center, center, closed, source, "the centre line crosses itself")
    _check_no_crossing(inner, outer, closed, source, "the inner border crosses the outer border")
    _check_no_crossing(inner, center, closed, source, "the inner border crosses the centre line")
    _check_no_crossing(outer, center, closed, source, "the outer border crosses the centre line")
    _check_no_crossing(inner, inner, closed, source, "the inner border crosses itself")
    _check_no_crossing(outer, outer, closed, source, "the outer border crosses itself")


def signed_area(poly: np.ndarray) -> float:
    """Shoelace signed area (m^2) of a polyline taken as closed; positive counter-clockwise."""
    x, y = poly[:, 0], poly[:, 1]
    return 0.5 * float(np.dot(x, np.roll(y, -1)) - np.dot(np.roll(x, -1), y))


def _orient(ax, ay, bx, by, cx, cy):
    return (bx - ax) * (cy - ay) - (by - ay) * (cx - ax)


def crossing_pairs(a: np.ndarray, b: np.ndarray, closed: bool) -> np.ndarray:
    """Index pairs (i, j) where segment a[i]-a[i+1] properly crosses b[j]-b[j+1].

    When `a is b` (one polyline against itself) neighbouring segments, which share an end
    point, are not counted, nor the first and last segments of a loop.
    """
    a0, a1 = a[:-1], a[1:]
    b0, b1 = b[:-1], b[1:]
    ax0, ay0, ax1, ay1 = (v[:, None] for v in (a0[:, 0], a0[:, 1], a1[:, 0], a1[:, 1]))
    bx0, by0, bx1, by1 = (v[None, :] for v in (b0[:, 0], b0[:, 1], b1[:, 0], b1[:, 1]))
    d1 = _orient(bx0, by0, bx1, by1, ax0, ay0)
    d2 = _orient(bx0, by0, bx1, by1, ax1, ay1)
    d3 = _orient(ax0, ay0, ax1, ay1, bx0, by0)
    d4 = _orient(ax0, ay0, ax1, ay1, bx1, by1)
    cross = (d1 * d2 < 0) & (d3 * d4 < 0)
    if a is b:
        s = len(a0)
        i, j = np.indices((s, s))
        cross &= j > i + 1
        if closed:
            cross[0, s - 1] = False
    return np.argwhere(cross)


def _check_no_crossing(a, b, closed, source, what):
    pairs = crossing_pairs(a, b, closed)
    if len(pairs):
        i, j = (int(v) for v in pairs[0])
        x, y = (a[i] + a[i + 1]) / 2
        raise TrackValidationError(
            f"{source}: {what} ({len(pairs)} crossing(s), first between rows {i}-{i + 1} and "
            f"{j}-{j + 1} near x={x:.3f} y={y:.3f} m); fix the points there, e.g. widen the "
            "turn or narrow the track so the borders do not fold"
        )
