"""Cameras behind one interface: the Raspberry Pi camera (picamera2), OpenCV capture (a
V4L2 device or a video file), and replay of recorded frames.

Runs on the car: picamera2 is imported only when that camera is opened. Every camera
returns `Frame`s (image, capture timestamp on the `time.monotonic()` clock, index, colour
order); `vehicle.observation.preprocess` turns any of them into the model's observation.
`read()` raises `CameraStalled` when no new frame comes within its timeout and
`CameraError` when the device fails; it never returns an old frame twice.

    with open_camera("opencv:/dev/video0") as cam:      # or "picamera2", "replay:DIR"
        frame = cam.read(timeout_s=0.2)

Live cameras (picamera2, OpenCV devices) capture in a background thread that keeps only
the newest frame, so the drive loop always gets the freshest image (lowest latency) and
a slow loop drops frames instead of queueing them.
"""

from __future__ import annotations

import json
import re
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from vehicle.errors import CameraEnded, CameraError, CameraStalled

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".pgm")


@dataclass(frozen=True)
class Frame:
    """One captured image."""

    image: np.ndarray
    """uint8 pixels: HxW gray or HxWx3 colour (see `color_order`)."""
    timestamp_s: float
    """When the sensor captured it, on the time.monotonic() clock."""
    index: int
    """Sequence number from the camera (gaps = dropped frames)."""
    color_order: str = "bgr"
    """'bgr' (OpenCV), 'rgb' (picamera2 RGB888) or 'gray'."""

    def age_s(self, now_s: float | None = None) -> float:
        """Seconds since capture."""
        return (time.monotonic() if now_s is None else now_s) - self.timestamp_s


class Camera:
    """Base of every camera: `read()`, `close()`, a nominal `rate_hz`, context manager."""

    name = "camera"
    rate_hz: float = 30.0

    def read(self, timeout_s: float = 0.5) -> Frame:
        raise NotImplementedError

    def close(self) -> None:
        pass

    def __enter__(self) -> Camera:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def describe(self) -> dict[str, Any]:
        return {"camera": self.name, "rate_hz": self.rate_hz}


class _LatestFrameCamera(Camera):
    """A camera whose frames arrive from a capture thread; keeps only the newest."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._latest: Frame | None = None
        self._delivered = -1
        self._error: BaseException | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.frames_captured = 0
        self.frames_dropped = 0
        """Frames replaced before the loop read them."""

    def _start(self) -> None:
        self._thread = threading.Thread(target=self._capture_loop, name=self.name, daemon=True)
        self._thread.start()

    def _grab(self) -> Frame:
        raise NotImplementedError

    def _capture_loop(self) -> None:
        while not self._stop.is_set():
            try:
                frame = self._grab()
            except BaseException as exc:
                with self._cond:
                    self._error = exc
                    self._cond.notify_all()
                return
            with self._cond:
                if self._latest is not None and self._latest.index > self._delivered:
                    self.frames_dropped += 1
                self._latest = frame
                self.frames_captured += 1
                self._cond.notify_all()

    def read(self, timeout_s: float = 0.5) -> Frame:
        deadline = time.monotonic() + timeout_s
        with self._cond:
            while True:
                latest = self._latest
                if latest is not None and latest.index > self._delivered:
                    self._delivered = latest.index
                    return latest
                if self._error is not None:
                    err = self._error
                    raise CameraError(f"{self.name}: capture failed: {err}") from err
                left = deadline - time.monotonic()
                if left <= 0:
                    raise CameraStalled(
                        f"{self.name}: no new frame for {timeout_s * 1000:.0f} ms; check the "
                        "camera cable and that no other program uses the camera"
                    )
                self._cond.wait(left)

    def close(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=2.0)


class OpenCVCamera(_LatestFrameCamera):
    """OpenCV capture: a V4L2 device (index or /dev/videoN) or a video file.

    Devices are captured continuously (newest frame wins). Files are decoded one frame per
    `read()`, paced at the file's frame rate when `realtime`, else as fast as read.
    """

    def __init__(
        self,
        source: str | int,
        *,
        width: int = 640,
        height: int = 480,
        rate_hz: float = 30.0,
        realtime: bool = True,
        loop: bool = False,
    ) -> None:
        super().__init__()
        self.source = source
        self.name = f"opencv:{source}"
        self.is_file = isinstance(source, str) and Path(source).is_file()
        self.realtime = realtime
        self.loop = loop
        if isinstance(source, str) and source.isdigit():
            source = int(source)
        if self.is_file:
            cap = cv2.VideoCapture(str(source))
        else:
            cap = cv2.VideoCapture(source, cv2.CAP_V4L2)
        if not cap.isOpened():
            raise CameraError(
                f"{self.name}: cannot open (not a video file, and no V4L2 device there); "
                "list devices with `v4l2-ctl --list-devices`"
            )
        if not self.is_file:
            cap.set(cv2.CAP_PROP_FRAME_WIDTH, width)
            cap.set(cv2.CAP_PROP_FRAME_HEIGHT, height)
            cap.set(cv2.CAP_PROP_FPS, rate_hz)
            cap.set(cv2.CAP_PROP_BUFFERSIZE, 1)
        fps = cap.get(cv2.CAP_PROP_FPS)
        self.rate_hz = float(fps) if fps and fps > 0 else rate_hz
        self._cap = cap
        self._index = 0
        self._next_due = time.monotonic()
        if not self.is_file:
            self._start()

    def _grab(self) -> Frame:
        ok, image = self._cap.read()
        if not ok or image is None:
            raise CameraError(f"{self.name}: the device returned no image")
        self._index += 1
        return Frame(image, time.monotonic(), self._index, "bgr")

    def read(self, timeout_s: float = 0.5) -> Frame:
        if not self.is_file:
            return super().read(timeout_s)
        ok, image = self._cap.read()
        if (not ok or image is None) and self.loop:
            self._cap.set(cv2.CAP_PROP_POS_FRAMES, 0)
            ok, image = self._cap.read()
        if not ok or image is None:
            raise CameraEnded(f"{self.name}: end of video after {self._index} frames")
        if self.realtime:
            self._next_due += 1.0 / self.rate_hz
            delay = self._next_due - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            else:
                self._next_due = time.monotonic()
        self._index += 1
        return Frame(image, time.monotonic(), self._index, "bgr")

    def close(self) -> None:
        super().close()
        self._cap.release()


class PiCamera2Camera(_LatestFrameCamera):
    """The Raspberry Pi camera through picamera2 (imported here, lazily).

    Chooses the sensor mode that sees the whole field of view (largest crop area) among
    those reaching `rate_hz`, with the smallest output size, so the image is binned, not
    cropped; frame duration is fixed to 1/rate_hz; 2 buffers keep latency low. Timestamps
    come from the sensor (libcamera SensorTimestamp, CLOCK_BOOTTIME) mapped to
    time.monotonic().
    """

    name = "picamera2"

    def __init__(self, *, width: int = 640, height: int = 480, rate_hz: float = 30.0) -> None:
        super().__init__()
        try:
            from picamera2 import Picamera2
        except ImportError as exc:
            raise CameraError(
                "picamera2 is not installed: on Raspberry Pi OS run `sudo apt install "
                "python3-picamera2` and create the venv with --system-site-packages"
            ) from exc
        try:
            cam = Picamera2()
            mode = self._full_fov_mode(cam.sensor_modes, rate_hz)
            extra: dict[str, Any] = {}
            if mode:  # selecting the raw stream's size picks that sensor mode
                extra["raw"] = {"size": mode["size"], "format": mode["unpacked"]}
            config = cam.create_video_configuration(
                main={"size": (width, height), "format": "RGB888"},
                controls={"FrameDurationLimits": (int(1e6 / rate_hz), int(1e6 / rate_hz))},
                buffer_count=2,
                queue=False,
                **extra,
            )
            cam.configure(config)
            cam.start()
        except Exception as exc:
            raise CameraError(f"picamera2: cannot start the camera ({exc})") from exc
        self._cam = cam
        self.rate_hz = rate_hz
        self.mode = mode
        self._index = 0
        self._start()

    @staticmethod
    def _full_fov_mode(modes: list[dict[str, Any]], rate_hz: float) -> dict[str, Any] | None:
        fast = [m for m in modes if float(m.get("fps", 0)) >= rate_hz - 0.5]
        if not fast:
            return None

        def area(m: dict[str, Any]) -> int:
            crop = m.get("crop_limits", (0, 0, 0, 0))
            return int(crop[2]) * int(crop[3])

        best = max(area(m) for m in fast)
        widest = [m for m in fast if area(m) == best]
        return min(widest, key=lambda m: m["size"][0] * m["size"][1])

    def _grab(self) -> Frame:
        request = self._cam.capture_request()
        try:
            image = request.make_array("main")
            sensor_ns = request.get_metadata().get("SensorTimestamp")
        finally:
            request.release()
        now_mono = time.monotonic()
        if sensor_ns:
            age = (time.clock_gettime_ns(time.CLOCK_BOOTTIME) - int(sensor_ns)) / 1e9
            ts = now_mono - max(0.0, age)
        else:
            ts = now_mono
        self._index += 1
        # picamera2's "RGB888" is stored B, G, R in memory, i.e. OpenCV's BGR order
        return Frame(np.ascontiguousarray(image[:, :, :3]), ts, self._index, "bgr")

    def close(self) -> None:
        super().close()
        try:
            self._cam.stop()
            self._cam.close()
        except Exception:
            pass

    def describe(self) -> dict[str, Any]:
        out = super().describe()
        if self.mode:
            out["sensor_mode"] = {"size": list(self.mode["size"]), "fps": self.mode.get("fps")}
        return out


class ReplayCamera(Camera):
    """Recorded frames from a folder (a run log's `frames/` or any image files), in
    file-name order. Paced at the recorded timestamps (`frames.jsonl` beside the images,
    as the run log writes) or at `rate_hz`; `realtime=False` replays as fast as read.
    Frame timestamps are the replay time, so the drive loop treats them as live."""

    def __init__(
        self,
        directory: str | Path,
        *,
        rate_hz: float | None = None,
        realtime: bool = True,
        loop: bool = False,
    ) -> None:
        root = Path(directory)
        if root.is_dir() and (root / "frames").is_dir():
            root = root / "frames"
        if not root.is_dir():
            raise CameraError(f"replay:{directory}: not a folder of recorded frames")
        files = sorted(p for p in root.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
        if not files:
            raise CameraError(
                f"replay:{directory}: no image files ({', '.join(IMAGE_SUFFIXES)}) in {root}"
            )
        self.name = f"replay:{directory}"
        self.files = files
        self.realtime = realtime
        self.loop = loop
        self._times = self._recorded_times(root, files)
        if rate_hz is None:
            if self._times is not None and len(self._times) > 1:
                span = self._times[-1] - self._times[0]
                rate_hz = (len(self._times) - 1) / span if span > 0 else 15.0
            else:
                rate_hz = 15.0
        self.rate_hz = float(rate_hz)
        self._pos = 0
        self._index = 0
        self._t0: float | None = None

    @staticmethod
    def _recorded_times(root: Path, files: list[Path]) -> list[float] | None:
        index = root / "frames.jsonl"
        if not index.is_file():
            return None
        times: dict[str, float] = {}
        for line in index.read_text(encoding="utf-8").splitlines():
            try:
                rec = json.loads(line)
                times[Path(rec["file"]).name] = float(rec["t_s"])
            except (ValueError, KeyError, TypeError):
                continue
        if not all(f.name in times for f in files):
            return None
        return [times[f.name] for f in files]

    def read(self, timeout_s: float = 0.5) -> Frame:
        if self._pos >= len(self.files):
            if not self.loop:
                raise CameraEnded(f"{self.name}: end of the recording ({len(self.files)} frames)")
            self._pos = 0
            self._t0 = None
        path = self.files[self._pos]
        image = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
        if image is None:
            raise CameraError(f"{self.name}: {path.name} is not a readable image")
        if self.realtime:
            now = time.monotonic()
            if self._t0 is None:
                self._t0 = now
            if self._times is not None:
                due = self._t0 + (self._times[self._pos] - self._times[0])
            else:
                due = self._t0 + self._pos / self.rate_hz
            if due - now > timeout_s:
                raise CameraStalled(f"{self.name}: next frame due in {due - now:.3f} s")
            if due > now:
                time.sleep(due - now)
        self._pos += 1
        self._index += 1
        order = "gray" if image.ndim == 2 else "bgr"
        return Frame(image, time.monotonic(), self._index, order)


_SPEC = re.compile(r"^(picamera2|opencv|replay)(?::(.+))?$")


def open_camera(spec: str, *, rate_hz: float = 30.0, realtime: bool = True) -> Camera:
    """A camera from a command-line spec: 'picamera2', 'opencv:DEV' (index, /dev/videoN
    or a video file) or 'replay:DIR'."""
    m = _SPEC.match(spec.strip())
    if m is None:
        raise CameraError(
            f"camera {spec!r} is not one of picamera2, opencv:DEV (e.g. opencv:0, "
            "opencv:/dev/video0, opencv:clip.mp4) or replay:DIR"
        )
    kind, arg = m.group(1), m.group(2)
    if kind == "picamera2":
        return PiCamera2Camera(rate_hz=rate_hz)
    if not arg:
        raise CameraError(f"camera {spec!r}: give the {kind} source after the colon")
    if kind == "opencv":
        return OpenCVCamera(arg, rate_hz=rate_hz, realtime=realtime)
    return ReplayCamera(arg, realtime=realtime)


def frame_gray(frame: Frame) -> np.ndarray:
    """The frame as HxW gray (for previews and saving)."""
    img = frame.image
    if img.ndim == 2:
        return img
    code = cv2.COLOR_RGB2GRAY if frame.color_order == "rgb" else cv2.COLOR_BGR2GRAY
    return cv2.cvtColor(img[:, :, :3], code)
