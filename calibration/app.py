"""The calibrator app (`racer calibrate`): a thin Textual `App` that holds the saved and
the draft calibration, runs the 50 Hz command stream (`calibration.actuator`), and
switches between the six task screens (keys 1-6). Given a `vehicle.link.LinkConfig`
(`racer calibrate`) or a `functools.partial` that opens a link, the stream and the link
run in a process of their own (`calibration.stream_process`), so the camera preview
repainting never holds up the stream; given an open link (tests, fakes), in a thread
worker of this process. Space is STOP on every screen; q quits (asking first when there
are unsaved changes). Leaving a screen, quitting, a lost link or a crash all return the
car to neutral (see `calibration.actuator`).
"""

from __future__ import annotations

import functools
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from textual.app import App
from textual.binding import Binding
from textual.message import Message
from textual.screen import ModalScreen

from calibration.actuator import Actuator, ActuatorConfig, ActuatorStatus, CarLink
from calibration.model import Calibration, diff
from calibration.screens.base import ConfirmScreen, TaskScreen
from calibration.screens.battery import BatteryScreen
from calibration.screens.camera import CameraScreen
from calibration.screens.review import ReviewScreen
from calibration.screens.speed import SpeedScreen
from calibration.screens.steering import SteeringScreen
from calibration.screens.throttle import ThrottleScreen
from calibration.store import CalibrationStore
from calibration.stream_process import StreamProcess, open_link
from vehicle.link import LinkConfig


@dataclass
class StatusUpdate(Message):
    """What the link worker saw on its last tick."""

    status: ActuatorStatus


class CalibratorApp(App[None]):
    """Keyboard-only calibrator that fits 80x24."""

    CSS_PATH = "calibrator.tcss"
    TITLE = "racer calibrate"
    ENABLE_COMMAND_PALETTE = False
    SCREENS = {
        "steering": SteeringScreen,
        "throttle": ThrottleScreen,
        "speed": SpeedScreen,
        "battery": BatteryScreen,
        "camera": CameraScreen,
        "review": ReviewScreen,
    }
    BINDINGS = [
        Binding("space", "stop", "STOP", priority=True),
        Binding("1", "goto('steering')", "steer", show=False),
        Binding("2", "goto('throttle')", "throttle", show=False),
        Binding("3", "goto('speed')", "speed", show=False),
        Binding("4", "goto('battery')", "battery", show=False),
        Binding("5", "goto('camera')", "camera", show=False),
        Binding("6", "goto('review')", "review", show=False),
        Binding("q", "quit", "quit"),
    ]

    def __init__(
        self,
        link: CarLink | LinkConfig | functools.partial[Any],
        store: CalibrationStore,
        *,
        camera: Any = None,
        actuator_config: ActuatorConfig | None = None,
        preview_fps: float = 2.0,
        start: str = "steering",
        link_name: str = "",
        odometer: Callable[[], float] | None = None,
        readout: Callable[[], str] | None = None,
    ) -> None:
        super().__init__()
        self.store = store
        self.saved: Calibration = store.load_or_default()
        self.draft: Calibration = self.saved
        self.actuator: Actuator | StreamProcess
        if isinstance(link, LinkConfig):
            link = functools.partial(open_link, link)
        if isinstance(link, functools.partial):  # opens the link in the stream process
            self.actuator = StreamProcess(link, self.draft.pulses(), config=actuator_config)
        else:
            self.actuator = Actuator(link, self.draft.pulses(), config=actuator_config)
        self.camera = camera
        self.preview_fps = preview_fps
        self.status: ActuatorStatus | None = None
        self.start = start
        self.link_name = link_name
        self.odometer = odometer
        """Distance driven, metres, when the car can tell (the simulated board can): the
        speed test then offers it as the tape measurement."""
        self.readout = readout
        """A line of what the simulated car really does (wheel angle, speed), shown under
        the status line with --sim so a laptop user can "measure" like on a real car."""
        self._stop_link = threading.Event()
        self._warned_lost = False
        if link_name:
            self.sub_title = link_name

    # ---- lifecycle ------------------------------------------------------------------

    def on_mount(self) -> None:
        self.run_worker(self._link_worker, thread=True, name="link", group="link")
        self.push_screen(self.start)
        if self.readout is not None:
            self.set_interval(0.5, self._refresh_readout)

    def _refresh_readout(self) -> None:
        if self.screen_stack and isinstance(self.screen, TaskScreen):
            self.screen.show_status(self.status)

    def _link_worker(self) -> None:
        """Thread worker: the actuator loop; only posts messages."""

        def post(status: ActuatorStatus) -> None:
            self.post_message(StatusUpdate(status))

        self.actuator.loop(post, self._stop_link)

    def on_unmount(self) -> None:
        self.shutdown_link()

    def _handle_exception(self, error: Exception) -> None:
        # a bug anywhere in the app: the car goes to neutral and disarms before anything
        # else (Textual then exits; `racer calibrate` does the same again on its way out)
        self.shutdown_link()
        super()._handle_exception(error)

    def shutdown_link(self) -> None:
        """Stop the command stream and leave the car at neutral, disarmed."""
        self._stop_link.set()
        self.actuator.shutdown()

    def on_status_update(self, message: StatusUpdate) -> None:
        self.status = message.status
        if message.status.link_state == "lost" and not self._warned_lost:
            self._warned_lost = True
            self.notify(
                f"link lost ({message.status.error}); motor stopped. Check the cable/port.",
                severity="error",
                timeout=8,
            )
        elif message.status.link_state == "ok":
            self._warned_lost = False
        if not self.screen_stack:
            return  # shutting down
        screen = self.screen
        if isinstance(screen, TaskScreen):
            screen.show_status(message.status)
        elif isinstance(screen, ModalScreen):
            below = self.screen_stack[-2] if len(self.screen_stack) > 1 else None
            if isinstance(below, TaskScreen):
                below.show_status(message.status)

    # ---- the draft ------------------------------------------------------------------

    def set_draft(self, cal: Calibration) -> None:
        """Replace the draft (screens call this) and redraw the current screen."""
        self.draft = cal
        self.actuator.set_neutral(cal.steering.mid_us, cal.throttle.neutral_us)
        if self.screen_stack and isinstance(self.screen, TaskScreen):
            self.screen.show_draft()

    def unsaved_count(self) -> int:
        return len(diff(self.saved, self.draft))

    def save(self) -> None:
        """Save the draft (atomic, previous file kept as backup)."""
        self.store.save(self.draft)
        self.saved = self.draft

    # ---- actions --------------------------------------------------------------------

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action in ("goto", "quit") and isinstance(self.screen, ModalScreen):
            return False
        return True

    def action_stop(self) -> None:
        self.actuator.stop()
        for screen in self.screen_stack:
            if isinstance(screen, TaskScreen):
                screen.on_stop_pressed()
        self.notify("STOP: throttle at neutral", timeout=2)

    def action_goto(self, name: str) -> None:
        self.actuator.neutral()
        if isinstance(self.screen, TaskScreen) and self.screen.NAME == name:
            return
        self.switch_screen(name)

    async def action_quit(self) -> None:
        self.actuator.neutral()
        count = self.unsaved_count()
        if not count:
            self.exit()
            return

        def answered(yes: bool | None) -> None:
            if yes:
                self.exit()

        self.push_screen(
            ConfirmScreen(f"Quit without saving {count} change(s)? (6: review and save)"),
            answered,
        )
