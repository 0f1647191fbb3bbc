"""Procedural closed tracks: `generate(seed, ...)` draws a random star-shaped control polygon,
runs a periodic spline through it, scales it to a random length in range, and keeps it
only if it is drivable: every bend at least `min_radius_m` (the car's turning radius plus a
margin, and half the width plus a margin so the inner border cannot fold), no part of the
road closer than a hairpin's gap to another part, and the usual track validation. The same
seed gives the same track (all randomness comes from `numpy.random.default_rng(seed)`).
"""

from __future__ import annotations

import math

import numpy as np

from tracks.errors import GeneratorError, TrackError
from tracks.geometry import menger_curvature
from tracks.spline import SAMPLE_SPACING_M, PeriodicSpline, loop_from_spline
from tracks.track import Track

CAR_WHEELBASE_M = 0.164
"""DeepRacer wheelbase (URDF), metres."""
CAR_MAX_STEER_DEG = 30.0
"""DeepRacer steering limit, degrees."""
CAR_MIN_TURN_RADIUS_M = CAR_WHEELBASE_M / math.tan(math.radians(CAR_MAX_STEER_DEG))
"""Tightest circle the car can drive (rear axle), about 0.284 m."""
TURN_MARGIN_M = 0.1
"""Added to the car's turning radius so a bend can be driven with steering to spare."""
FOLD_MARGIN_M = 0.1
"""Added to half the width: the inner border's radius never drops below this."""
GAP_M = 0.2
"""Least grass between two parts of the road that are not neighbours along the lap."""
MAX_ATTEMPTS = 400
"""Random shapes tried for one seed before giving up."""


def default_min_radius_m(width_m: float) -> float:
    """The tightest centre-line radius allowed for a track of this width."""
    return max(CAR_MIN_TURN_RADIUS_M + TURN_MARGIN_M, width_m / 2 + FOLD_MARGIN_M)


def generate(
    seed: int,
    length_range_m: tuple[float, float] = (14.0, 30.0),
    width_m: float = 0.76,
    min_radius_m: float | None = None,
    clockwise: bool = False,
    spacing_m: float = SAMPLE_SPACING_M,
) -> Track:
    """A valid closed track for `seed`, deterministic; see the module docstring."""
    lo, hi = (float(v) for v in length_range_m)
    if not (0 < lo <= hi):
        raise GeneratorError(
            f"length_range_m {length_range_m!r} must be (min, max) with 0 < min <= max"
        )
    if not width_m > 0:
        raise GeneratorError(f"width_m {width_m!r} must be positive, e.g. 0.76")
    need = default_min_radius_m(width_m)
    radius = need if min_radius_m is None else float(min_radius_m)
    if radius < width_m / 2 + 1e-3:
        raise GeneratorError(
            f"min_radius_m {radius} is below half the width ({width_m / 2} m): the inner "
            f"border would fold; use at least {need:.3f}"
        )
    # A loop whose bends all have radius >= R is at least 2*pi*R long (plus gaps).
    if hi < 2 * math.pi * (radius + width_m / 2 + GAP_M):
        raise GeneratorError(
            f"length_range_m max {hi} m is too short for bends of radius {radius:.2f} m and "
            f"width {width_m} m; allow at least {2 * math.pi * (radius + width_m / 2 + GAP_M):.1f} m"
        )
    rng = np.random.default_rng(seed)
    for attempt in range(MAX_ATTEMPTS):
        control = _random_control(rng)
        length = float(rng.uniform(lo, hi))
        track = _try_build(control, length, width_m, radius, clockwise, spacing_m, seed, attempt)
        if track is not None:
            return track
    raise GeneratorError(
        f"no drivable track found for seed {seed} in {MAX_ATTEMPTS} attempts with length "
        f"{lo}-{hi} m, width {width_m} m, min radius {radius:.2f} m; allow longer tracks, a "
        "narrower width or a smaller min_radius_m"
    )


def _random_control(rng: np.random.Generator) -> np.ndarray:
    """A random star-shaped polygon around the origin (so it cannot cross itself)."""
    k = int(rng.integers(7, 15))
    base = np.arange(k) * (2 * math.pi / k)
    angles = np.sort(base + rng.uniform(-0.35, 0.35, k) * (2 * math.pi / k))
    radii = 1.0 + rng.uniform(-0.55, 0.55, k)
    aspect = rng.uniform(1.0, 1.9)
    rot = rng.uniform(0, 2 * math.pi)
    p = np.c_[aspect * radii * np.cos(angles), radii * np.sin(angles)]
    c, s = math.cos(rot), math.sin(rot)
    return p @ np.array([[c, s], [-s, c]])


def _try_build(control, length, width, radius, clockwise, spacing, seed, attempt) -> Track | None:
    spline = PeriodicSpline(control)
    s, curve_len = spline.resample(0.05 * spline.period / length)
    scale = length / curve_len
    kappa = np.abs(spline.curvature(s)) / scale  # curvature scales as 1/scale
    if kappa.max() * radius > 1.0:
        return None
    # clearance between parts of the loop that are not neighbours along it
    pts = spline.evaluate(s) * scale
    n = len(pts)
    ds = length / n
    idx = np.arange(n)
    sep = np.abs(idx[:, None] - idx[None, :])
    sep = np.minimum(sep, n - sep) * ds
    far = sep > math.pi * radius * 1.05
    d = np.hypot(pts[:, None, 0] - pts[None, :, 0], pts[:, None, 1] - pts[None, :, 1])
    if np.any(d[far] < width + GAP_M):
        return None
    # start line in the middle of the straightest stretch of about 1.5 m
    window = max(1, int(1.5 / ds))
    bend = np.convolve(np.concatenate([kappa, kappa[:window]]), np.ones(window), "valid")[:n]
    start = (int(np.argmin(bend)) + window // 2) % n
    try:
        track = loop_from_spline(
            spline,
            width,
            name=f"generated_{seed}",
            description=f"procedurally generated track, seed {seed}",
            source=f"generator seed={seed}",
            scale=scale,
            start_arc_fraction=start / n,
            spacing_m=spacing,
            clockwise=clockwise,
        )
    except TrackError:
        return None
    if np.abs(menger_curvature(track.center, True)).max() * radius > 1.0:
        return None
    return track
