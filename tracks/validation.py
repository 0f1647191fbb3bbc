"""Validation of track data: every check a route array must pass before anything uses it.

Each failure raises `TrackValidationError` with a one-line message naming the source (file
or track name), the offending value and the fix. Checks, in order: shape and dtype, finite
values, size (rows, coordinate range), enough points, repeated points, closure, length and
extent, a width the car fits in, no self-intersecting centre line, no border crossing the
other border or the centre line, no border crossing itself, and last the inner border inside
the outer one (by area, which means something only for loops that do not cross themselves).

Size limits come from DeepRacer's real routes (shared/data/deepracer-tracks: 22-203 rows,
centre lines 5.7-33.3 m long, within 11 m of the origin, 0.61-1.19 m wide) and the 1/18
car (0.2 m wide). They refuse absurd input (a file in millimetres, 20,000 waypoints) with
a message before anything costly runs; the crossing check is a sweep over segment
bounding boxes, O(N log N) for tracks, its memory bounded by `CROSSING_CHUNK_PAIRS`.

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

CAR_WIDTH_M = 0.2
"""Width of the 1/18 DeepRacer car (its body; wheel track 0.162 m), metres."""

MIN_WIDTH_M = CAR_WIDTH_M
"""Narrowest allowed distance between an inner and an outer border point of one row: the
car must fit (DeepRacer's narrowest route is 0.61 m wide)."""

MAX_WAYPOINTS = 5_000
"""Most rows a route file may have: 25x DeepRacer's densest route (203 rows), a waypoint
every 2 cm on the longest allowed track. Reward functions get every waypoint in
`params['waypoints']` on every step, so more only slows training."""

MAX_COORDINATE_M = 1_000.0
"""Largest |x| or |y| allowed, metres. DeepRacer's routes lie within 11 m of the origin;
far out, float precision eats the centimetres the geometry works in (a +1e9 m offset left
no digits for the areas)."""

MIN_LENGTH_M = 1.0
"""Shortest centre line, metres: about three car lengths (the car turns no tighter than a
0.28 m radius; DeepRacer's shortest route, Straight_track, is 5.7 m)."""

MAX_LENGTH_M = 100.0
"""Longest centre line, metres: three times DeepRacer's longest route here (2022 re:Invent
championship, 33.3 m). A file in centimetres (x100) is 1.8 km."""

MAX_SPAN_M = 100.0
"""Largest extent of the track (all border and centre points) along x or y, metres; the
road raster and projection grids scale with its square."""

CROSSING_CHUNK_PAIRS = 1 << 18
"""Candidate segment pairs the crossing check tests at a time (bounds its memory)."""


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
    if len(array) > MAX_WAYPOINTS:
        raise TrackValidationError(
            f"{source}: {len(array)} rows, at most {MAX_WAYPOINTS} are allowed (DeepRacer's "
            "routes have 22-203); resample the centre line and borders, e.g. every 5 cm"
        )
    far = np.abs(array) > MAX_COORDINATE_M
    if far.any():
        row, col = (int(v) for v in np.argwhere(far)[0])
        raise TrackValidationError(
            f"{source}: coordinate {array[row, col]:.6g} m at row {row} column {col} is "
            f"beyond +-{MAX_COORDINATE_M:g} m (DeepRacer's tracks lie within 11 m of the "
            "origin); coordinates are metres: rescale a file in mm or cm, move a track far "
            "from the origin back to it (subtract its mean)"
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
    length = float(step.sum())
    if length > MAX_LENGTH_M:
        raise TrackValidationError(
            f"{source}: the centre line is {length:.1f} m long, at most {MAX_LENGTH_M:g} m "
            "is allowed (DeepRacer's longest route is 33.3 m); coordinates are metres: "
            "rescale a file in cm or mm"
        )
    every = np.vstack([center, inner, outer])
    span = every.max(axis=0) - every.min(axis=0)
    if span.max() > MAX_SPAN_M:
        axis = "xy"[int(np.argmax(span))]
        raise TrackValidationError(
            f"{source}: the track spans {span.max():.1f} m along {axis}, at most "
            f"{MAX_SPAN_M:g} m is allowed (DeepRacer's tracks span 6-11 m); bring the border "
            "points within a few metres of the centre line"
        )
    width = np.linalg.norm(inner - outer, axis=1)
    if width.min() < MIN_WIDTH_M:
        i = int(np.argmin(width))
        raise TrackValidationError(
            f"{source}: track width {width[i]:.6f} m at row {i} is narrower than the car "
            f"({MIN_WIDTH_M} m needed, DeepRacer's routes are 0.61-1.19 m wide); move the "
            "inner or outer border point apart"
        )
    if length < MIN_LENGTH_M:
        raise TrackValidationError(
            f"{source}: the centre line is {length:.4f} m long, at least {MIN_LENGTH_M:g} m "
            "is needed for the car to drive it; coordinates are metres: rescale a file in "
            "another unit"
        )
    _check_no_crossing(center, center, closed, source, "the centre line crosses itself")
    _check_no_crossing(inner, outer, closed, source, "the inner border crosses the outer border")
    _check_no_crossing(inner, center, closed, source, "the inner border crosses the centre line")
    _check_no_crossing(outer, center, closed, source, "the outer border crosses the centre line")
    _check_no_crossing(inner, inner, closed, source, "the inner border crosses itself")
    _check_no_crossing(outer, outer, closed, source, "the outer border crosses itself")
    if closed:
        # Only after the crossing checks: a border that crosses itself (a figure eight)
        # encloses no meaningful area, and its two borders tie to rounding error.
        a_in, a_out = abs(signed_area(inner)), abs(signed_area(outer))
        if a_in >= a_out:
            raise TrackValidationError(
                f"{source}: the inner border (columns 2-3) encloses {a_in:.3f} m^2, more than "
                f"the outer border (columns 4-5, {a_out:.3f} m^2); the borders are swapped, "
                "exchange columns 2-3 with 4-5"
            )


def signed_area(poly: np.ndarray) -> float:
    """Shoelace signed area (m^2) of a polyline taken as closed; positive counter-clockwise.

    Computed about the points' mean: far from the origin the products of raw coordinates
    would swamp the area in rounding error."""
    mid = poly.mean(axis=0)
    x, y = poly[:, 0] - mid[0], poly[:, 1] - mid[1]
    return 0.5 * float(np.dot(x, np.roll(y, -1)) - np.dot(np.roll(x, -1), y))


def _orient(ax, ay, bx, by, cx, cy):
    return (bx - ax) * (cy - ay) - (by - ay) * (cx - ax)


def crossing_pairs(a: np.ndarray, b: np.ndarray, closed: bool) -> np.ndarray:
    """Index pairs (i, j), sorted, where segment a[i]-a[i+1] properly crosses b[j]-b[j+1].

    When `a is b` (one polyline against itself) neighbouring segments, which share an end
    point, are not counted, nor the first and last segments of a loop. Only pairs whose
    bounding boxes overlap are tested (a sweep along the wider axis, then the other axis),
    `CROSSING_CHUNK_PAIRS` at a time; the test itself is the exact orientation test.
    """
    a0, a1 = a[:-1], a[1:]
    b0, b1 = b[:-1], b[1:]
    s = len(b0)
    every = np.vstack([a, b])
    sweep = int(np.argmax(every.max(axis=0) - every.min(axis=0)))
    other = 1 - sweep
    lo_a, hi_a = np.minimum(a0, a1), np.maximum(a0, a1)
    lo_b, hi_b = np.minimum(b0, b1), np.maximum(b0, b1)
    found = [np.zeros(0, dtype=np.intp)]
    for i, j in _overlapping(lo_a[:, sweep], hi_a[:, sweep], lo_b[:, sweep], hi_b[:, sweep]):
        keep = (lo_a[i, other] <= hi_b[j, other]) & (lo_b[j, other] <= hi_a[i, other])
        if a is b:
            keep &= j > i + 1
            if closed:
                keep &= ~((i == 0) & (j == s - 1))
        i, j = i[keep], j[keep]
        ax0, ay0, ax1, ay1 = a0[i, 0], a0[i, 1], a1[i, 0], a1[i, 1]
        bx0, by0, bx1, by1 = b0[j, 0], b0[j, 1], b1[j, 0], b1[j, 1]
        d1 = _orient(bx0, by0, bx1, by1, ax0, ay0)
        d2 = _orient(bx0, by0, bx1, by1, ax1, ay1)
        d3 = _orient(ax0, ay0, ax1, ay1, bx0, by0)
        d4 = _orient(ax0, ay0, ax1, ay1, bx1, by1)
        cross = (d1 * d2 < 0) & (d3 * d4 < 0)
        found.append(i[cross] * s + j[cross])
    key = np.unique(np.concatenate(found))  # a pair may come from both sweep passes
    return np.stack([key // s, key % s], axis=1)


def _overlapping(lo_p, hi_p, lo_q, hi_q):
    """Yield index arrays (i, j), a chunk at a time, covering every pair of overlapping
    intervals [lo_p[i], hi_p[i]] and [lo_q[j], hi_q[j]]: one of the two starts inside the
    other, so each side's starts are sorted once and searched with the other's ends."""
    for lo, hi, starts_of, swap in ((lo_p, hi_p, lo_q, False), (lo_q, hi_q, lo_p, True)):
        order = np.argsort(starts_of, kind="stable")
        starts = starts_of[order]
        first = np.searchsorted(starts, lo, side="left")
        count = np.searchsorted(starts, hi, side="right") - first
        total = np.cumsum(count)
        k = 0
        while k < len(count):
            done = int(total[k - 1]) if k else 0
            stop = max(k + 1, int(np.searchsorted(total, done + CROSSING_CHUNK_PAIRS, "right")))
            c = count[k:stop]
            mine = np.repeat(np.arange(k, stop), c)
            offset = np.arange(int(c.sum())) - np.repeat(np.cumsum(c) - c, c)
            theirs = order[np.repeat(first[k:stop], c) + offset]
            yield (theirs, mine) if swap else (mine, theirs)
            k = stop


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
