"""sim2real.hil.camera.StartLineCamera (the `racer calibrate --sim` preview); SimCamera is
exercised through whole sessions in test_session.py."""

from __future__ import annotations

import subprocess
import sys

import numpy as np

from sim2real.hil.camera import StartLineCamera
from tests.test_architecture import BLOCKER, ROOT


def test_start_line_camera_sees_the_track():
    cam = StartLineCamera("beginner_oval")
    frame = cam.read()
    assert frame.shape == (120, 160) and frame.dtype == np.uint8
    assert frame.std() > 5  # a picture, not a blank
    assert np.array_equal(cam.read(), frame)  # the car stands still


def test_hil_needs_no_tensorflow_nor_albumentations():
    """`racer drive --sim` and `racer calibrate --sim` start without the training stack."""
    script = BLOCKER.format(blocked=("tensorflow", "keras", "albumentations")) + (
        "import sim2real.hil.session, sim2real.hil.board\nprint('ok')\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("ok")
