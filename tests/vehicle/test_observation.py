"""The shared observation contract: shape, dtype, luma weights, resizing, clear errors."""

from __future__ import annotations

import numpy as np
import pytest

from vehicle.errors import ObservationError
from vehicle.observation import OBS_SHAPE, preprocess


def test_full_frame_becomes_120x160x1_uint8() -> None:
    frame = np.zeros((480, 640, 3), np.uint8)
    out = preprocess(frame)
    assert out.shape == OBS_SHAPE == (120, 160, 1)
    assert out.dtype == np.uint8


def test_luma_weights_are_bt601() -> None:
    # pure blue, green, red in BGR order -> 0.114, 0.587, 0.299 of 255
    frame = np.zeros((120, 160, 3), np.uint8)
    frame[:, :53] = (255, 0, 0)
    frame[:, 53:106] = (0, 255, 0)
    frame[:, 106:] = (0, 0, 255)
    out = preprocess(frame)[:, :, 0]
    assert out[0, 0] == 29 and out[0, 60] == 150 and out[0, 120] == 76


def test_rgb_order_swaps_channels() -> None:
    frame = np.zeros((120, 160, 3), np.uint8)
    frame[...] = (0, 0, 255)  # blue in RGB, red in BGR
    assert preprocess(frame, color_order="rgb")[0, 0, 0] == 29
    assert preprocess(frame, color_order="bgr")[0, 0, 0] == 76


def test_area_resize_averages_thin_lines() -> None:
    # a one-pixel white line every 4th column of a 640-wide frame averages to 1/4 grey
    frame = np.zeros((480, 640), np.uint8)
    frame[:, ::4] = 255
    out = preprocess(frame)
    assert np.all(np.abs(out.astype(int) - 64) <= 1)


def test_already_observation_sized_gray_passes_through() -> None:
    rng = np.random.default_rng(0)
    frame = rng.integers(0, 256, (120, 160, 1), dtype=np.uint8)
    assert np.array_equal(preprocess(frame), frame)


@pytest.mark.parametrize(
    "frame, needle",
    [
        (np.zeros((120, 160, 3), np.float32), "dtype float32"),
        (np.zeros((120, 160, 2), np.uint8), "shape (120, 160, 2)"),
        ([[0, 1], [2, 3]], "numpy array"),
    ],
)
def test_bad_frames_name_the_problem(frame: object, needle: str) -> None:
    with pytest.raises(ObservationError, match=None) as info:
        preprocess(frame)  # type: ignore[arg-type]
    assert needle in str(info.value)
