"""vehicle.camera: OpenCV video files, replay folders, spec parsing, newest-frame capture."""

from __future__ import annotations

import json
import threading
import time

import cv2
import numpy as np
import pytest

from vehicle.camera import Frame, OpenCVCamera, ReplayCamera, _LatestFrameCamera, open_camera
from vehicle.errors import CameraEnded, CameraError, CameraStalled
from vehicle.observation import OBS_SHAPE, preprocess


def _video(path, n=10, fps=30.0):
    w = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), fps, (320, 240))
    assert w.isOpened()
    for i in range(n):
        w.write(np.full((240, 320, 3), 10 + i * 20, np.uint8))
    w.release()


def test_opencv_video_file_frames_then_end(tmp_path):
    _video(tmp_path / "clip.avi")
    with open_camera(f"opencv:{tmp_path / 'clip.avi'}", realtime=False) as cam:
        assert cam.rate_hz == pytest.approx(30.0)
        frames = [cam.read() for _ in range(10)]
        with pytest.raises(CameraEnded):
            cam.read()
    assert [f.index for f in frames] == list(range(1, 11))
    assert frames[0].image.shape == (240, 320, 3) and frames[0].color_order == "bgr"
    assert preprocess(frames[3].image).shape == OBS_SHAPE
    assert frames[9].image.mean() > frames[0].image.mean()


def test_opencv_file_paced_in_real_time(tmp_path):
    _video(tmp_path / "clip.avi", n=8, fps=20.0)
    cam = OpenCVCamera(str(tmp_path / "clip.avi"), realtime=True)
    t = time.monotonic()
    for _ in range(8):
        cam.read()
    assert time.monotonic() - t >= 0.3  # 8 frames at 20 fps
    cam.close()


def test_replay_uses_recorded_timing(tmp_path):
    frames = tmp_path / "frames"
    frames.mkdir()
    with open(frames / "frames.jsonl", "w") as fh:
        for i in range(5):
            cv2.imwrite(str(frames / f"{i:06d}.png"), np.full((120, 160), i * 40, np.uint8))
            fh.write(json.dumps({"file": f"{i:06d}.png", "t_s": 100 + i * 0.1, "frame": i}) + "\n")
    cam = ReplayCamera(tmp_path)  # a run folder: finds frames/
    assert cam.rate_hz == pytest.approx(10.0)
    t = time.monotonic()
    got = [cam.read() for _ in range(5)]
    assert time.monotonic() - t >= 0.35
    assert [int(f.image.mean()) for f in got] == [0, 40, 80, 120, 160]
    assert got[0].color_order == "gray"
    with pytest.raises(CameraEnded):
        cam.read()


def test_bad_specs_and_sources(tmp_path):
    with pytest.raises(CameraError, match="not one of picamera2"):
        open_camera("webcam")
    with pytest.raises(CameraError, match="give the opencv source"):
        open_camera("opencv")
    with pytest.raises(CameraError, match="cannot open"):
        open_camera(f"opencv:{tmp_path / 'missing.avi'}")
    with pytest.raises(CameraError, match="no image files"):
        open_camera(f"replay:{tmp_path}")
    (tmp_path / "x.png").write_bytes(b"not a png")
    with pytest.raises(CameraError, match="not a readable image"):
        open_camera(f"replay:{tmp_path}", realtime=False).read()


def test_picamera2_missing_is_a_clear_error():
    try:
        import picamera2  # noqa: F401
    except ImportError:
        with pytest.raises(CameraError, match="python3-picamera2"):
            open_camera("picamera2")
    else:
        pytest.skip("picamera2 installed: this is a Pi")


class _Burst(_LatestFrameCamera):
    """Produces frames fast; the reader must always get the newest, never a repeat."""

    name = "burst"

    def __init__(self, n, stall_after=None):
        super().__init__()
        self.n = n
        self.i = 0
        self.stall_after = stall_after
        self.gate = threading.Event()
        self.stalled = threading.Event()
        """Set once the last frame before the stall has been handed over."""
        self._start()

    def _grab(self):
        if self.i >= self.n or (self.stall_after is not None and self.i >= self.stall_after):
            self.stalled.set()
            self.gate.wait()
            raise RuntimeError("sensor unplugged")
        self.i += 1
        time.sleep(0.002)
        return Frame(np.zeros((4, 4), np.uint8), time.monotonic(), self.i, "gray")


def test_latest_frame_camera_drops_old_frames_and_reports_stall_and_error():
    cam = _Burst(n=1000, stall_after=30)
    assert cam.stalled.wait(10.0), "the capture thread never produced its 30 frames"
    f = cam.read(timeout_s=1.0)
    assert f.index == 30 and cam.frames_dropped == 29  # the newest, not the oldest
    with pytest.raises(CameraStalled):
        cam.read(timeout_s=0.1)  # no repeat of frame 30
    cam.gate.set()
    with pytest.raises(CameraError, match="sensor unplugged"):
        cam.read(timeout_s=10.0)  # returns as soon as the capture thread reports
    cam.close()
