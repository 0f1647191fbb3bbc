"""Shared fixtures: DeepRacer track files are read from the shared data folder (never copied
into the repository); tests that need them skip when it is absent."""

from __future__ import annotations

from pathlib import Path

import pytest

SHARED_TRACKS = Path("/work/shared/data/deepracer-tracks")


def shared_track_paths() -> list[Path]:
    return sorted(SHARED_TRACKS.glob("*.npy")) if SHARED_TRACKS.is_dir() else []


@pytest.fixture(scope="session")
def reinvent_path() -> Path:
    path = SHARED_TRACKS / "reinvent_base.npy"
    if not path.exists():
        pytest.skip("shared DeepRacer tracks are not available")
    return path


@pytest.fixture(scope="session")
def reinvent(reinvent_path):
    from tracks.track import load_npy

    return load_npy(reinvent_path)
