"""The privileged pure-pursuit expert completes a lap of every catalogue track and of every
shared DeepRacer track (read from the shared folder, skipped when absent)."""

from __future__ import annotations

import pytest

from sim2real.params import IN_PROGRESS, LAP_COMPLETE, EpisodeProgress
from sim2real.pure_pursuit import PurePursuit
from sim2real.world import World
from tests.sim2real.conftest import shared_track_paths
from tracks import catalogue
from tracks.track import load_npy

TRACKS = [("catalogue", n) for n in catalogue.names()] + [
    ("shared", str(p)) for p in shared_track_paths()
]


@pytest.mark.parametrize("kind,spec", TRACKS, ids=[s.rsplit("/", 1)[-1] for _, s in TRACKS])
def test_pure_pursuit_completes_a_lap(kind, spec):
    track = catalogue.resolve(spec) if kind == "catalogue" else load_npy(spec)
    world = World(track)
    expert = PurePursuit(world)
    progress = EpisodeProgress()
    world.place_on_centerline(0.0)
    progress.reset(world.lookup.position(*world.pose[:2]).ndist)
    progress.update(world.position().ndist, None)
    status = IN_PROGRESS
    worst = 0.0
    for _ in range(int(track.length_m / 0.3 * 15) + 100):
        world.step(*expert.command())
        progress.update(world.position().ndist, 0.01)
        status = progress.status(world.wheels_on_road())
        worst = max(worst, world.position().distance_from_center_m)
        if status != IN_PROGRESS:
            break
    assert status == LAP_COMPLETE, f"{track.name}: ended {status} at {progress.progress:.1f}%"
    assert all(world.wheels_on_road())
    assert worst < 0.2
