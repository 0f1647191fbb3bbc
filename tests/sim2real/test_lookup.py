"""The fast per-step lookup must agree exactly with tracks.geometry on every shared track."""

from __future__ import annotations

import numpy as np
import pytest

from sim2real.lookup import TrackLookup
from tests.sim2real.conftest import shared_track_paths
from tracks.geometry import TrackGeometry
from tracks.track import load_npy


@pytest.mark.parametrize("path", shared_track_paths(), ids=lambda p: p.stem)
def test_lookup_matches_track_geometry(path):
    track = load_npy(path)
    geo = TrackGeometry(track)
    lookup = TrackLookup(track, geo)
    rng = np.random.default_rng(7)
    pts = np.vstack([track.inner, track.outer])
    lo, hi = pts.min(0) - 1.5, pts.max(0) + 1.5
    sample = np.vstack(
        [
            rng.uniform(lo, hi, (400, 2)),
            track.center[:-1] + rng.normal(0, 0.2, (len(track.center) - 1, 2)),
        ]
    )
    ref = geo.project(sample)
    for i, (x, y) in enumerate(sample.tolist()):
        pos = lookup.position(x, y)
        assert pos.arc_m == pytest.approx(ref.arc_m[i], abs=1e-9)
        assert pos.distance_from_center_m == pytest.approx(ref.distance_from_center_m[i], abs=1e-9)
        assert [pos.prev_waypoint, pos.next_waypoint] == ref.closest_waypoints[i].tolist()
        assert pos.is_left_of_center == bool(ref.is_left_of_center[i])
        assert pos.track_width_m == pytest.approx(ref.track_width_m[i], abs=1e-9)
    on = lookup.on_road([tuple(p) for p in sample.tolist()])
    assert on == geo.contains(sample).tolist()
