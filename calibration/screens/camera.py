"""Camera: a low-rate preview of the camera in the terminal with the model's 160x120
grayscale view beside it, and the orientation and exposure settings.

The preview is read in a thread worker at `preview_fps` (2 by default, 5 at most) so it
stays usable over a slow SSH link; it stops while the screen is not shown.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from dataclasses import dataclass, replace
from typing import Any

import cv2
import numpy as np
from textual.binding import Binding
from textual.containers import Horizontal
from textual.message import Message
from textual.widget import Widget
from textual.widgets import Static
from textual.worker import get_current_worker

from calibration.model import CameraSettings
from calibration.screens.base import TaskScreen
from vehicle.console.terminal_view import FrameView
from vehicle.observation import preprocess

EXPOSURE_STEPS_US = (100, 200, 500, 1000, 2000, 4000, 8000, 16000, 33000, 66000)
"""Fixed exposure times offered by e / E, microseconds."""


def oriented(frame: np.ndarray, settings: CameraSettings) -> np.ndarray:
    """`frame` rotated clockwise and flipped as `settings` say."""
    rot = {90: cv2.ROTATE_90_CLOCKWISE, 180: cv2.ROTATE_180, 270: cv2.ROTATE_90_COUNTERCLOCKWISE}
    if settings.rotation_deg in rot:
        frame = cv2.rotate(frame, rot[settings.rotation_deg])
    if settings.flip_horizontal and settings.flip_vertical:
        frame = cv2.flip(frame, -1)
    elif settings.flip_horizontal:
        frame = cv2.flip(frame, 1)
    elif settings.flip_vertical:
        frame = cv2.flip(frame, 0)
    return frame


def as_bgr(frame: Any) -> np.ndarray:
    """An image from a plain array (BGR or gray) or a `vehicle.camera.Frame`."""
    image = getattr(frame, "image", frame)
    if getattr(frame, "color_order", "bgr") == "rgb":
        image = image[:, :, ::-1]
    return np.asarray(image)


@dataclass
class FrameReady(Message):
    """A new camera frame for the preview (posted from the camera worker)."""

    frame: Any


@dataclass
class CameraFailed(Message):
    """The camera could not deliver a frame."""

    error: str


class CameraScreen(TaskScreen):
    """Preview plus the model's view; rotation, flips and exposure."""

    NAME = "camera"
    BINDINGS = [
        Binding("o", "rotate", "rotate 90"),
        Binding("h", "flip('flip_horizontal')", "flip h"),
        Binding("v", "flip('flip_vertical')", "flip v"),
        Binding("e", "exposure(1)", "exp+"),
        Binding("E", "exposure(-1)", "exp-"),
        Binding("a", "auto_exposure", "auto exp"),
    ]

    def compose_body(self) -> Iterable[Widget]:
        with Horizontal(id="camera-row"):
            yield FrameView("camera", id="camera-preview")
            yield FrameView("model view 160x120", id="camera-model")
        yield Static(id="camera-settings")

    @property
    def source(self) -> Any:
        return self.calibrator.camera

    def on_screen_resume(self) -> None:
        super().on_screen_resume()
        if self.source is None:
            self.say("no camera on this car (or none given): preview off", error=True)
            return
        self._apply_controls()
        self.run_worker(self._preview, thread=True, exclusive=True, group="camera")

    def on_screen_suspend(self) -> None:
        super().on_screen_suspend()
        self.workers.cancel_group(self, "camera")

    def _preview(self) -> None:
        """Thread worker: read frames at the preview rate and post them."""
        worker = get_current_worker()
        period = 1.0 / max(0.2, min(5.0, self.calibrator.preview_fps))
        while not worker.is_cancelled:
            start = time.monotonic()
            try:
                frame = self.source.read()
            except Exception as exc:  # a camera error is shown, the calibrator goes on
                self.post_message(CameraFailed(f"{type(exc).__name__}: {exc}"))
                return
            self.post_message(FrameReady(frame))
            time.sleep(max(0.0, period - (time.monotonic() - start)))

    def on_frame_ready(self, message: FrameReady) -> None:
        frame = as_bgr(message.frame)
        frame = oriented(frame, self.draft.camera)
        self.query_one("#camera-preview", FrameView).show(frame)
        model = preprocess(frame)[:, :, 0]
        self.query_one("#camera-model", FrameView).show(model)

    def on_camera_failed(self, message: CameraFailed) -> None:
        self.say(f"camera: {message.error}", error=True)

    # ---- actions --------------------------------------------------------------------

    def _set(self, **changes: Any) -> None:
        camera = replace(self.draft.camera, **changes)
        self.set_draft(replace(self.draft, camera=camera))
        self._apply_controls()

    def _apply_controls(self) -> None:
        set_controls = getattr(self.source, "set_controls", None)
        if callable(set_controls):
            cam = self.draft.camera
            try:
                set_controls(exposure_us=cam.exposure_us, analogue_gain=cam.analogue_gain)
            except Exception as exc:
                self.say(f"camera refused the exposure: {exc}", error=True)

    def action_rotate(self) -> None:
        self._set(rotation_deg=(self.draft.camera.rotation_deg + 90) % 360)

    def action_flip(self, which: str) -> None:
        self._set(**{which: not getattr(self.draft.camera, which)})

    def action_exposure(self, direction: int) -> None:
        current = self.draft.camera.exposure_us
        if current is None:
            index = EXPOSURE_STEPS_US.index(8000)
        else:
            index = min(
                range(len(EXPOSURE_STEPS_US)), key=lambda i: abs(EXPOSURE_STEPS_US[i] - current)
            )
            index = max(0, min(len(EXPOSURE_STEPS_US) - 1, index + direction))
        self._set(exposure_us=EXPOSURE_STEPS_US[index])

    def action_auto_exposure(self) -> None:
        self._set(exposure_us=None, analogue_gain=None)

    def show_draft(self) -> None:
        super().show_draft()
        cam = self.draft.camera
        exposure = "auto" if cam.exposure_us is None else f"{cam.exposure_us} us"
        gain = "auto" if cam.analogue_gain is None else f"{cam.analogue_gain:g}"
        flips = (
            ", ".join(
                n
                for n, on in (("horizontal", cam.flip_horizontal), ("vertical", cam.flip_vertical))
                if on
            )
            or "none"
        )
        fps = min(5.0, self.calibrator.preview_fps)
        self.query_one("#camera-settings", Static).update(
            f"rotation [bold]{cam.rotation_deg} deg[/]  flip [bold]{flips}[/]  "
            f"exposure [bold]{exposure}[/]  gain [bold]{gain}[/]  preview {fps:g} fps"
        )
