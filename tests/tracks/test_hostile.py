"""Hostile and careless route files (issue 20, items 9-11): each is refused through `racer
tracks info` with exit 2 and one line naming the file, the bad value and the fix, within a
bounded wall time and memory. Add a probe: one row in PROBES (or a strategy below)."""

from __future__ import annotations

import resource
import subprocess
import sys
import time

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.tracks.conftest import REPO, deepracer_file
from tools.cli import main as racer
from tracks import validation as V
from tracks.errors import TrackValidationError
from tracks.geometry import TrackGeometry
from tracks.track import Track, load_npy

PROBE_WALL_S = 5.0
"""Each probe must be refused within this long (they all are in well under a second)."""


def _ring(n: int, radius_m: float, width_m: float) -> np.ndarray:
    th = np.arange(n) * (2 * np.pi / n)
    u = np.c_[np.cos(th), np.sin(th)]
    a = np.hstack([radius_m * u, (radius_m - width_m / 2) * u, (radius_m + width_m / 2) * u])
    return np.vstack([a, a[:1]])


def _base() -> np.ndarray:
    return _ring(120, 2.5, 0.76)


# name -> (route array, text of the value in the message, text of the fix in the message)
PROBES: dict[str, tuple[np.ndarray, str, str]] = {
    "scaled_1e9": (_base() * 1e9, "coordinate 2.5e+09 m", "rescale a file in mm or cm"),
    "offset_1e9": (_base() + 1e9, "coordinate 1e+09 m", "back to it (subtract its mean)"),
    "offset_2km": (_base() + 2000.0, "coordinate 2002.5 m", "subtract its mean"),
    "scaled_x100": (_base() * 100, "1570.6 m long", "rescale a file in cm or mm"),
    "rows_20000": (_ring(20_000, 8.0, 0.6), "20001 rows", "resample"),
    "rows_max_plus_one": (
        _ring(V.MAX_WAYPOINTS, 8.0, 0.6),
        f"{V.MAX_WAYPOINTS + 1} rows",
        "resample",
    ),
    "tiny_1cm_5mm": (_ring(60, 0.01, 0.005), "width 0.005000 m", "move the inner or outer"),
    "narrow_10cm": (_ring(60, 2.0, 0.1), "width 0.100000 m", "move the inner or outer"),
    "short_loop": (_ring(60, 0.12, 0.22), "0.7536 m long", "rescale a file"),
    "far_borders": (
        np.hstack([_base()[:, :4], _base()[:, 4:] * 30.0]),
        "spans 172.8 m along x",
        "bring the border points within",
    ),
}


@pytest.mark.parametrize("name", list(PROBES))
def test_hostile_file_exit_2_naming_file_value_fix(name, tmp_path, capsys):
    array, value, fix = PROBES[name]
    path = tmp_path / f"{name}.npy"
    np.save(path, array)
    t0 = time.monotonic()
    assert racer(["tracks", "info", str(path)]) == 2
    assert time.monotonic() - t0 < PROBE_WALL_S
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("racer tracks: error: "), err
    assert str(path) in err[0] and value in err[0] and fix in err[0], err[0]


def test_oversized_files_refused_under_a_memory_cap(tmp_path):
    """The files that used to build 20000 x 20000 arrays (and ran out of memory after a
    minute) are refused by a real `racer` process capped at 1.5 GB, in seconds."""
    cases = {"rows": _ring(20_000, 8.0, 0.6), "x100": _base() * 100, "e9": _base() * 1e9}
    cap = 1_500_000_000
    for name, array in cases.items():
        path = tmp_path / f"{name}.npy"
        np.save(path, array)
        t0 = time.monotonic()
        proc = subprocess.run(
            [sys.executable, "-m", "tools.cli", "tracks", "info", str(path)],
            capture_output=True,
            text=True,
            timeout=120,
            cwd=REPO,
            preexec_fn=lambda: resource.setrlimit(resource.RLIMIT_AS, (cap, cap)),
        )
        assert time.monotonic() - t0 < 60
        assert proc.returncode == 2, proc.stderr
        assert "Traceback" not in proc.stderr and str(path) in proc.stderr


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    scale=st.floats(min_value=500.0, max_value=1e15),
    offset=st.floats(min_value=-1e12, max_value=1e12),
)
def test_any_scale_or_offset_out_of_range_is_refused(scale, offset, tmp_path):
    path = tmp_path / "scaled.npy"
    np.save(path, _base() * scale + offset)
    with pytest.raises(TrackValidationError) as exc:
        load_npy(path)
    assert str(path) in str(exc.value) and "\n" not in str(exc.value)
    assert exc.value.exit_code == 2


@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(radius=st.floats(0.001, 3.0), width=st.floats(0.0015, V.MIN_WIDTH_M * 0.999))
def test_no_track_narrower_than_the_car(radius, width, tmp_path):
    path = tmp_path / "narrow.npy"
    np.save(path, _ring(80, max(radius, width), width))
    with pytest.raises(TrackValidationError, match="narrower than the car|crosses|swapped"):
        load_npy(path)


def test_an_offset_track_is_measured_about_its_mean():
    """Areas are computed about the points' mean, so a track 900 m out keeps its digits
    (this offset was 'borders are swapped ... 0.000 m^2' at 1e9)."""
    a = _base()
    near = V.signed_area(a[:, 4:6])
    far = V.signed_area(a[:, 4:6] + 900.0)
    assert far == pytest.approx(near, rel=1e-9)
    assert Track.from_array(a + 900.0, "far").direction == "ccw"


def test_geometry_refuses_an_unvalidated_huge_track():
    t = Track.from_array(_base(), "ok")
    for label in ("center", "inner", "outer"):
        object.__setattr__(t, label, getattr(t, label) * 1e9)
    with pytest.raises(TrackValidationError, match="too large for the road raster"):
        TrackGeometry(t)


def test_limits_accept_the_largest_allowed_sizes():
    assert Track.from_array(_ring(V.MAX_WAYPOINTS - 1, 8.0, 0.6), "dense").n_points == 4999
    t = Track.from_array(_ring(200, 15.9, V.MIN_WIDTH_M + 0.01), "long")
    assert t.length_m < V.MAX_LENGTH_M


# -- the crossing check: the sweep answers exactly what the all-pairs test answered ------


def _all_pairs(a, b, closed):
    """The former N x N check, kept as the reference."""
    a0, a1, b0, b1 = a[:-1], a[1:], b[:-1], b[1:]
    ax0, ay0, ax1, ay1 = (v[:, None] for v in (a0[:, 0], a0[:, 1], a1[:, 0], a1[:, 1]))
    bx0, by0, bx1, by1 = (v[None, :] for v in (b0[:, 0], b0[:, 1], b1[:, 0], b1[:, 1]))
    o = V._orient
    d1, d2 = o(bx0, by0, bx1, by1, ax0, ay0), o(bx0, by0, bx1, by1, ax1, ay1)
    d3, d4 = o(ax0, ay0, ax1, ay1, bx0, by0), o(ax0, ay0, ax1, ay1, bx1, by1)
    cross = (d1 * d2 < 0) & (d3 * d4 < 0)
    if a is b:
        s = len(a0)
        i, j = np.indices((s, s))
        cross &= j > i + 1
        if closed:
            cross[0, s - 1] = False
    return np.argwhere(cross)


@pytest.mark.parametrize(
    "name", ["reinvent_base.npy", "Bowtie_track.npy", "Canada_Training.npy", "Straight_track.npy"]
)
def test_crossing_check_identical_on_real_tracks(name):
    a = np.load(deepracer_file(name))
    closed = bool(np.array_equal(a[0], a[-1]))
    c, i, o = a[:, 0:2], a[:, 2:4], a[:, 4:6]
    for p, q in ((c, c), (i, o), (i, c), (o, c), (i, i), (o, o)):
        assert np.array_equal(V.crossing_pairs(p, q, closed), _all_pairs(p, q, closed))


@settings(max_examples=150, deadline=None)
@given(
    a=st.lists(st.tuples(st.integers(0, 12), st.integers(0, 12)), min_size=2, max_size=40),
    b=st.lists(st.tuples(st.integers(0, 12), st.integers(0, 12)), min_size=2, max_size=40),
    closed=st.booleans(),
    chunk=st.sampled_from([1, 7, 1 << 18]),
)
def test_crossing_check_matches_all_pairs(a, b, closed, chunk):
    pa, pb = np.array(a, float) * 0.25, np.array(b, float) * 0.25
    old = V.CROSSING_CHUNK_PAIRS
    V.CROSSING_CHUNK_PAIRS = chunk
    try:
        for p, q in ((pa, pa), (pa, pb)):
            got = V.crossing_pairs(p, q, closed)
            assert got.shape[1] == 2 and np.array_equal(got, _all_pairs(p, q, closed))
    finally:
        V.CROSSING_CHUNK_PAIRS = old


def test_crossing_check_is_bounded_on_20000_waypoints():
    ring = _ring(20_000, 8.0, 0.6)
    t0 = time.monotonic()
    for p, q in ((ring[:, 0:2], ring[:, 0:2]), (ring[:, 2:4], ring[:, 4:6])):
        assert len(V.crossing_pairs(p, q, True)) == 0
    assert time.monotonic() - t0 < 5.0
