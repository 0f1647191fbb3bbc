"""Procedural generator: valid, drivable, deterministic tracks for any seed."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tracks.errors import GeneratorError
from tracks.generator import CAR_MIN_TURN_RADIUS_M, GAP_M, default_min_radius_m, generate
from tracks.geometry import TrackGeometry
from tracks.track import Track


def _check_drivable(t: Track, length_range, width, min_radius):
    assert isinstance(t, Track) and t.closed and t.direction == "ccw"
    assert length_range[0] - 0.01 <= t.length_m <= length_range[1] + 0.01
    assert np.allclose(t.widths_m, width, atol=1e-9)
    g = TrackGeometry(t)
    assert 1 / np.abs(g.curvature).max() >= min_radius - 1e-9
    # no two parts of the road closer than the gap (pairs more than a hairpin apart)
    c = t.center[:-1]
    n = len(c)
    idx = np.arange(n)
    sep = np.abs(idx[:, None] - idx[None, :])
    sep = np.minimum(sep, n - sep) * (g.length_m / n)
    d = np.linalg.norm(c[:, None] - c[None], axis=-1)
    assert d[sep > math.pi * min_radius * 1.2].min() >= width + GAP_M - 0.02


def test_car_turning_radius():
    assert CAR_MIN_TURN_RADIUS_M == pytest.approx(0.284, abs=1e-3)
    assert default_min_radius_m(0.76) == pytest.approx(0.48)
    assert default_min_radius_m(0.3) == pytest.approx(0.384, abs=1e-3)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(min_value=0, max_value=2**32 - 1))
def test_any_seed_gives_a_valid_drivable_track(seed):
    t = generate(seed)
    _check_drivable(t, (14, 30), 0.76, default_min_radius_m(0.76))
    assert t.name == f"generated_{seed}" and str(seed) in t.source


@settings(max_examples=12, deadline=None)
@given(
    seed=st.integers(min_value=0, max_value=10_000),
    width=st.floats(min_value=0.45, max_value=1.1),
    lo=st.floats(min_value=12.0, max_value=25.0),
)
def test_parameters_are_respected(seed, width, lo):
    rng = (lo, lo + 8.0)
    t = generate(seed, length_range_m=rng, width_m=width)
    _check_drivable(t, rng, width, default_min_radius_m(width))


def test_same_seed_same_track_and_different_seeds_differ():
    a, b, c = generate(42), generate(42), generate(43)
    assert np.array_equal(a.to_array(), b.to_array())
    assert a.to_array().shape != c.to_array().shape or not np.allclose(a.center, c.center)


def test_clockwise_and_custom_radius():
    t = generate(5, clockwise=True, min_radius_m=0.9)
    assert t.direction == "cw"
    assert 1 / np.abs(TrackGeometry(t).curvature).max() >= 0.9 - 1e-9


def test_impossible_requests_are_refused():
    with pytest.raises(GeneratorError, match="too short"):
        generate(1, length_range_m=(2.0, 3.0))
    with pytest.raises(GeneratorError, match="fold"):
        generate(1, width_m=1.0, min_radius_m=0.3)
    with pytest.raises(GeneratorError):
        generate(1, length_range_m=(20.0, 10.0))


@pytest.mark.slow
def test_many_consecutive_seeds():
    for seed in range(150):
        _check_drivable(generate(seed), (14, 30), 0.76, default_min_radius_m(0.76))
