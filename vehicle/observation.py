"""The observation contract shared by the car and training: any camera frame -> the model's
120x160x1 uint8 grayscale image, exactly as DeepRacer feeds its networks.

Runs on the car: numpy and OpenCV only. The simulator renders its frames and passes them
through `preprocess` too, so a simulated frame and a real one go through identical code.

Choices (see ARCHITECTURE.md): grayscale uses OpenCV's BT.601 luma (as DeepRacer's
`ObservationRGBToYFilter` and its car's `cv::cvtColor(BGR2GRAY)`); resizing uses
`INTER_AREA`, which averages pixels like a camera sensor binning does, so thin lines far
away look the same whether the frame was rendered small or captured large and shrunk.
Pixel values stay 0-255; the model scales them to [0, 1] itself.
"""

from __future__ import annotations

import cv2
import numpy as np

from vehicle.errors import ObservationError

OBS_HEIGHT = 120
"""Observation height in pixels (DeepRacer: 120)."""
OBS_WIDTH = 160
"""Observation width in pixels (DeepRacer: 160)."""
OBS_CHANNELS = 1
"""Grayscale: one channel."""
OBS_SHAPE = (OBS_HEIGHT, OBS_WIDTH, OBS_CHANNELS)
PREPROCESSING_VERSION = 1
"""Bumped whenever `preprocess` changes output for the same input; stored in bundles, and
the car refuses a model made for another version."""
CONTROL_RATE_HZ = 15.0
"""Default control rate: one camera frame and one action per step, 15 Hz as DeepRacer."""


def preprocess(frame: np.ndarray, *, color_order: str = "bgr") -> np.ndarray:
    """Turn a camera frame into the model's observation, shape (120, 160, 1), dtype uint8.

    `frame` is HxW (grayscale) or HxWx3 / HxWx4 (colour, `color_order` "bgr" as OpenCV
    delivers and as picamera2's "RGB888" format lays out its bytes (B, G, R in memory), or
    "rgb" for true RGB arrays such as imageio's), dtype uint8, any size.
    """
    if not isinstance(frame, np.ndarray):
        raise ObservationError(
            f"camera frame: expected a numpy array, got {type(frame).__name__}; "
            "pass the image returned by the camera"
        )
    if frame.dtype != np.uint8:
        raise ObservationError(
            f"camera frame: dtype {frame.dtype} is not uint8; convert with "
            "np.clip(frame, 0, 255).astype(np.uint8)"
        )
    if frame.ndim == 3 and frame.shape[2] == 1:
        frame = frame[:, :, 0]
    if frame.ndim == 2:
        gray = frame
    elif frame.ndim == 3 and frame.shape[2] in (3, 4):
        if color_order == "bgr":
            code = cv2.COLOR_BGR2GRAY if frame.shape[2] == 3 else cv2.COLOR_BGRA2GRAY
        elif color_order == "rgb":
            code = cv2.COLOR_RGB2GRAY if frame.shape[2] == 3 else cv2.COLOR_RGBA2GRAY
        else:
            raise ObservationError(
                f"color_order {color_order!r} is not 'bgr' or 'rgb'; OpenCV frames are 'bgr', "
                "picamera2 RGB888 frames are 'bgr' (B, G, R in memory)"
            )
        gray = cv2.cvtColor(frame, code)
    else:
        raise ObservationError(
            f"camera frame: shape {frame.shape} is not HxW, HxWx1, HxWx3 or HxWx4; "
            "check the camera's pixel format"
        )
    if gray.shape[0] < 2 or gray.shape[1] < 2:
        raise ObservationError(f"camera frame: shape {frame.shape} is too small to use")
    if gray.shape != (OBS_HEIGHT, OBS_WIDTH):
        gray = cv2.resize(gray, (OBS_WIDTH, OBS_HEIGHT), interpolation=cv2.INTER_AREA)
    return np.ascontiguousarray(gray).reshape(OBS_SHAPE)
