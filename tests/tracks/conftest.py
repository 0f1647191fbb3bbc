"""Shared fixtures for tracks tests: analytic shapes and the shared DeepRacer route files."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from tracks.track import Track

REPO = Path(__file__).resolve().parents[2]
DEEPRACER_DIR = (REPO / ".." / "shared" / "data" / "deepracer-tracks").resolve()
DEEPRACER_FILES = sorted(DEEPRACER_DIR.glob("*.npy")) if DEEPRACER_DIR.is_dir() else []


def deepracer_file(name: str) -> Path:
    path = DEEPRACER_DIR / name
    if not path.exists():
        pytest.skip(f"shared DeepRacer track {path} not present")
    return path


def circle_track(radius_m=2.0, width_m=0.6, n=200, name="circle") -> Track:
    """Regular n-gon around the origin, counter-clockwise, start at (radius, 0)."""
    th = np.arange(n) * (2 * np.pi / n)
    u = np.c_[np.cos(th), np.sin(th)]
    return Track.from_loop(
        name, radius_m * u, (radius_m - width_m / 2) * u, (radius_m + width_m / 2) * u
    )


def stadium_track(straight_m=4.0, radius_m=1.5, width_m=0.8, n_straight=8, n_arc=24):
    """Stadium oval: straights along y=-R (driving +x) and y=+R, semicircles centred at
    x=0 and x=straight_m; counter-clockwise; start at (0, -R). Returns (track, centre)."""
    L, R = straight_m, radius_m
    pts, nrm = [], []
    for i in range(n_straight):  # bottom straight, left normal is +y
        pts.append((L * i / n_straight, -R))
        nrm.append((0.0, 1.0))
    for i in range(n_arc):  # right semicircle around (L, 0), from -90 deg to +90 deg
        a = -np.pi / 2 + np.pi * i / n_arc
        pts.append((L + R * np.cos(a), R * np.sin(a)))
        nrm.append((-np.cos(a), -np.sin(a)))
    for i in range(n_straight):  # top straight, driving -x, left normal is -y
        pts.append((L - L * i / n_straight, R))
        nrm.append((0.0, -1.0))
    for i in range(n_arc):  # left semicircle around (0, 0), from 90 deg to 270 deg
        a = np.pi / 2 + np.pi * i / n_arc
        pts.append((R * np.cos(a), R * np.sin(a)))
        nrm.append((-np.cos(a), -np.sin(a)))
    c, n = np.array(pts), np.array(nrm)
    t = Track.from_loop("stadium", c, c + n * width_m / 2, c - n * width_m / 2)
    return t


@pytest.fixture
def circle() -> Track:
    return circle_track()


@pytest.fixture
def stadium() -> Track:
    return stadium_track()
