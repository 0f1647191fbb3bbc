"""Every shared DeepRacer file and every catalogue track validates and renders."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from tests.tracks.conftest import DEEPRACER_FILES
from tracks import catalogue
from tracks.errors import TrackFileError
from tracks.racing_line import racing_line
from tracks.render import BORDER_BGR, GRASS_BGR, ROAD_BGR, render, save_png
from tracks.track import load_npy

TRACKS = [("file", p) for p in DEEPRACER_FILES] + [("builtin", n) for n in catalogue.BUILTIN]


def _load(kind, ref):
    return load_npy(ref) if kind == "file" else catalogue.builtin(ref)


def _share(img, bgr):
    return float(np.mean(np.all(img == np.array(bgr, np.uint8), axis=-1)))


@pytest.mark.parametrize(("kind", "ref"), TRACKS, ids=lambda v: getattr(v, "stem", str(v)))
def test_track_renders_road_borders_and_start(kind, ref, tmp_path):
    track = _load(kind, ref)
    img = render(track, max_size_px=500)
    assert img.dtype == np.uint8 and img.ndim == 3 and max(img.shape[:2]) <= 500 + 100
    assert _share(img, ROAD_BGR) > 0.03
    assert _share(img, GRASS_BGR) > 0.1
    assert _share(img, BORDER_BGR) > 0.002
    out = save_png(img, tmp_path / "t.png")
    assert np.array_equal(cv2.imread(str(out)), img)


def test_racing_line_is_drawn():
    track = catalogue.builtin("reinvent_like")
    plain = render(track, max_size_px=500)
    lined = render(track, racing_line=racing_line(track), max_size_px=500)
    assert lined.shape[0] > plain.shape[0]  # taller header with the speed colour bar
    assert _share(lined, ROAD_BGR) < _share(plain, ROAD_BGR)


def test_save_png_refuses_other_suffixes_and_missing_dirs(tmp_path):
    img = np.zeros((10, 10, 3), np.uint8)
    with pytest.raises(TrackFileError, match=".png"):
        save_png(img, tmp_path / "a.jpg")
    with pytest.raises(TrackFileError, match="does not exist"):
        save_png(img, tmp_path / "nope" / "a.png")
