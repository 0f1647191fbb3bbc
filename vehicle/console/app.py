"""The `racer drive` live console (Textual): choose a model from the car's store, start and
stop it, set the max-speed percentage, and watch loop rate, latency p50/p99, battery,
link state, the last action, the lap timer (when the world knows laps), the camera view
and the log tail. Space is STOP on every screen: neutral and disarm at once.

Layered like the calibrator: a thin `DriveConsole` app (this module, with the parts it
is built from), one screen per task (drive, models: `vehicle.console.screens`), figures
aggregated and drawn by `vehicle.console.figures`, one `console.tcss`.

Where the drive loop (`vehicle.drive.Drive`) runs: with a `DriveRecipe` in the parts
(`racer drive`, `racer drive --sim`), in a process of its own
(`vehicle.console.loop_process`), so the screen never holds the loop's interpreter lock;
figures arrive 5 times a second and a camera frame twice a second, and STOP, quit and a
console that crashes or dies all send neutral first over there. Parts built from pieces
already open in this process (`ConsoleParts.from_pieces`: tests, snapshots) run it in a
thread worker of the console instead, the callback only aggregating figures (`LiveStats`)
and posting at most 5 times a second. The camera view repaints at 2 fps at most, so the
console stays usable over a slow SSH link.

`racer drive` (tools/cmd_drive.py) builds the parts (model store, the recipe that opens
camera, link, pulse calibration and policy in the loop process, optional lap source) and
calls `run`; with `--sim` the recipe drives the hardware-in-the-loop car and the
simulator times the laps.

Runs on the car: no TensorFlow; numpy and Textual only. The camera view is
`vehicle.console.terminal_view.FrameView`, shared with the calibrator.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from typing import Any

from rich.text import Text
from textual.app import App
from textual.binding import Binding
from textual.css.query import NoMatches
from textual.message import Message
from textual.widgets import Static

from vehicle.console.figures import (
    LapTimes,
    LiveStats,
    StatsSnapshot,
    TeeCamera,
    figures_text,
)
from vehicle.console.loop_process import DriveRecipe, FigureBatch, LoopProcess
from vehicle.console.screens import DriveScreen, ModelsScreen
from vehicle.console.terminal_view import FrameView
from vehicle.errors import StoreUnavailableError, VehicleError

STATS_PERIOD_S = 0.2
"""Figures are posted to the screen at most this often (5 Hz)."""
VIEW_PERIOD_S = 0.5
"""The camera view repaints at most this often (2 fps)."""
SPEED_STEP = 0.05
"""Max-speed change per key press (5 %)."""


OpenDrive = Callable[[Any, Callable[[Any], None]], AbstractContextManager[Any]]
"""(chosen model or None for the default, on_frame) -> a context manager that gives a
ready `vehicle.drive.Drive` and closes whatever it opened when it exits."""


@dataclass
class ConsoleParts:
    """What the console needs; built by `racer drive` (`parts_from_args`) or, with the
    pieces already open (simulation, tests), by `ConsoleParts.from_pieces`."""

    open_drive: OpenDrive | None = None
    """Builds the drive for one start in this process, run in a thread worker (see
    `OpenDrive`); None when `recipe` is given."""
    recipe: DriveRecipe | None = None
    """Builds the drive for one start in a process of its own (`LoopProcess`); used
    instead of `open_drive` when given."""
    store: Any = None
    """A `vehicle.models.store.ModelStore` to choose from, or None when this install has none."""
    store_error: VehicleError | None = None
    """Why the store could not be opened (`open_store`'s error); the model picker and the
    log tail show it."""
    link: Any = None
    """An open `vehicle.link.Link` kept between drives (battery and link state while
    stopped); None when each drive opens its own."""
    max_speed_fraction: float = 0.5
    """Starting max-speed fraction (the console's +/- change it, also while driving)."""
    laps: Callable[[], LapTimes | None] | None = None
    """Lap times when the world knows them (the simulator), else None."""
    title: str = ""
    """Where we drive: the port or 'simulated board'."""
    initial_model: Any = None
    """The model named on the command line (else the store's active one)."""
    loggers: tuple[str, ...] = ("vehicle",)
    """Loggers whose records (INFO and up) show in the log tail."""

    @classmethod
    def from_pieces(
        cls,
        *,
        camera: Any,
        link: Any,
        calibration: Any,
        config: Any,
        load_policy: Callable[[Any], Any],
        store: Any = None,
        mapping_mode: str = "deepracer",
        absolute: Any = None,
        runlog_for: Callable[[Any], Any] | None = None,
        **kwargs: Any,
    ) -> ConsoleParts:
        """Parts over an open camera and link that outlive each drive."""

        @contextmanager
        def open_drive(model: Any, on_frame: Callable[[Any], None]) -> Iterator[Any]:
            from dataclasses import replace

            from vehicle.drive import Drive, mapping_for

            policy = load_policy(model)
            yield Drive(
                camera,
                policy,
                link,
                calibration,
                mapping_for(policy, mapping_mode, absolute),
                replace(config, handle_signals=False),
                runlog=None if runlog_for is None else runlog_for(model),
                on_frame=on_frame,
            )

        kwargs.setdefault("max_speed_fraction", config.max_speed_fraction)
        return cls(open_drive=open_drive, store=store, link=link, **kwargs)


@dataclass(frozen=True)
class CommandLineModel:
    """A model given on the command line (a file, or a name the store may not list)."""

    name: str
    metadata: Any = None
    problem: str | None = None
    note: str | None = "from the command line"


# ---- messages ------------------------------------------------------------------------


@dataclass
class StatsUpdate(Message):
    """New figures from the drive thread."""

    stats: StatsSnapshot


@dataclass
class LogLine(Message):
    """One line for the log tail (any thread)."""

    text: str
    level: str = "info"


@dataclass
class DriveEnded(Message):
    """The drive loop returned (or never started)."""

    reason: str
    ok: bool
    summary: dict[str, Any] | None = None


class _LogHandler(logging.Handler):
    """Forwards the car runtime's log records to the console's log tail."""

    def __init__(self, app: App[Any]) -> None:
        super().__init__(logging.INFO)
        self._app = app

    def emit(self, record: logging.LogRecord) -> None:
        level = "error" if record.levelno >= logging.WARNING else "info"
        self._app.post_message(LogLine(f"{record.name}: {record.getMessage()}", level))


# ---- screens ---------------------------------------------------------------------------
# ---- the app ----------------------------------------------------------------------------


class DriveConsole(App[None]):
    """The live console. Space: STOP (always). Enter: start. s: stop. +/-: max speed."""

    CSS_PATH = "console.tcss"
    TITLE = "racer drive"
    ENABLE_COMMAND_PALETTE = False
    BINDINGS = [
        Binding("space", "stop", "STOP", priority=True),
        Binding("enter", "start", "start"),
        Binding("s", "halt", "stop"),
        Binding("plus,equals_sign", "speed(1)", "+5%", key_display="+"),
        Binding("minus", "speed(-1)", "-5%", key_display="-"),
        Binding("m", "models", "models"),
        Binding("q", "quit", "quit"),
    ]

    def __init__(
        self,
        parts: ConsoleParts,
        *,
        clock: Callable[[], float] = time.monotonic,
        auto_start: bool = False,
    ) -> None:
        super().__init__()
        self.parts = parts
        self.camera: TeeCamera | None = None
        self.stats = LiveStats()
        self.max_speed = float(parts.max_speed_fraction)
        self._cancel_start = False
        self.state = "STOPPED"
        self.model: Any = None
        self.drive: Any = None
        self.log_lines: deque[Text] = deque(maxlen=100)
        self.auto_start = auto_start
        self._clock = clock
        self._t0 = clock()
        self._last_post = 0.0
        self._last_event: tuple[str | None, float] = (None, 0.0)
        self._quitting = False
        self._handler = _LogHandler(self)
        self._loop_laps: LapTimes | None = None
        """The lap times the loop process sent last (a recipe with `lap_times`)."""
        self.loop_processes: list[LoopProcess] = []
        """Every drive started in its own process, closed when the console ends."""

    # -- lifecycle -----------------------------------------------------------------------

    def on_mount(self) -> None:
        for name in self.parts.loggers:
            logging.getLogger(name).addHandler(self._handler)
        self.push_screen(DriveScreen())
        store = self.parts.store
        if self.parts.store_error is not None:
            self.log_line(str(self.parts.store_error), "error")
        if self.parts.initial_model is not None:
            self.choose(self.parts.initial_model)
        elif store is None:
            if self.parts.store_error is None:
                self.log_line("no model store in this install; `racer drive --model FILE`", "error")
        else:
            try:
                self.choose(store.active())
            except Exception as exc:
                self.log_line(f"{exc}", "error")
        self.set_interval(VIEW_PERIOD_S, self._refresh_view)
        self.set_interval(1.0, self._idle_figures)
        if self.auto_start:
            self.action_start()

    def on_unmount(self) -> None:
        for name in self.parts.loggers:
            logging.getLogger(name).removeHandler(self._handler)
        self._cancel_start = True
        if self.drive is not None:
            self.drive.emergency_stop()
        if self.parts.link is not None:
            self.parts.link.neutral()

    def _handle_exception(self, error: Exception) -> None:
        # a bug anywhere in the console: stop the car before Textual reports and exits
        self._cancel_start = True
        if self.drive is not None:
            self.drive.emergency_stop()
        if self.parts.link is not None:
            self.parts.link.neutral()
        super()._handle_exception(error)

    # -- data down ---------------------------------------------------------------------------

    def log_line(self, text: str, level: str = "info") -> None:
        stamp = f"{self._clock() - self._t0:7.1f}s "
        style = "bold red" if level == "error" else ""
        self.log_lines.append(Text(stamp, style="dim") + Text(text, style=style))
        self._refresh_log()

    def choose(self, model: Any) -> None:
        if self.drive is not None:
            self.log_line("stop before choosing another model", "error")
            return
        if getattr(model, "problem", None):
            self.log_line(f"{model.name}: {model.problem}", "error")
            return
        self.model = model
        self.log_line(f"model {model.name}" + (f" ({model.note})" if model.note else ""))
        self.refresh_all()

    def refresh_all(self) -> None:
        self._refresh_head()
        self._refresh_figures(self.stats.snapshot())
        self._refresh_log()
        self._refresh_view()

    def _widget(self, selector: str, kind: type[Any]) -> Any:
        """A widget of the drive screen, or None before it is composed."""
        for screen in self.screen_stack:
            if isinstance(screen, DriveScreen):
                try:
                    return screen.query_one(selector, kind)
                except NoMatches:
                    return None
        return None

    def _refresh_head(self) -> None:
        head = self._widget("#drive-head", Static)
        if head is None:
            return
        name = "no model (m: choose)" if self.model is None else self.model.name
        meta = getattr(self.model, "metadata", None)
        detail = ""
        if meta is not None:
            space = meta.action_space
            detail = f"  {space.kind}, {space.max_speed_mps:g} m/s, {meta.control_rate_hz:g} Hz"
        where = f"  on {self.parts.title}" if self.parts.title else ""
        head.update(Text(f"model {name}", style="bold") + Text(detail + where, style="dim"))

    def _refresh_figures(self, stats: StatsSnapshot) -> None:
        figures = self._widget("#drive-figures", Static)
        if figures is None:
            return
        laps = None
        recipe = self.parts.recipe
        if self.parts.laps is not None:
            try:
                laps = self.parts.laps()
            except Exception:
                laps = None
        elif recipe is not None and recipe.lap_times is not None:
            laps = self._loop_laps or LapTimes(0.0)
        figures.update(figures_text(self, stats, laps))

    def _refresh_log(self) -> None:
        widget = self._widget("#drive-log", Static)
        if widget is None:
            return
        rows = max(1, widget.size.height or 5)
        tail = list(self.log_lines)[-rows:]
        if not tail:
            widget.update(Text("log: nothing yet", style="dim"))
            return
        body = Text("\n").join(tail)
        body.no_wrap, body.overflow = True, "ellipsis"  # one entry per row, newest last
        widget.update(body)

    def _refresh_view(self) -> None:
        view = self._widget("#drive-camera", FrameView)
        frame = None if self.camera is None else self.camera.last
        if view is None or frame is None:
            return
        image = frame.image
        if getattr(frame, "color_order", "bgr") == "rgb":
            image = image[:, :, ::-1]
        view.show(image)

    def _idle_figures(self) -> None:
        """While not driving, battery and link still show (no blocking I/O here)."""
        if self.drive is not None:
            return
        link = self.parts.link
        snap = self.stats.snapshot()
        if link is None:
            # each drive opens and closes its own link: nothing is known between drives
            fields = {
                "link_state": "opens on start" if snap.frames == 0 else "closed",
                "firmware_state": "-",
                "battery_v": None,
            }
        else:
            tel = link.latest_telemetry()
            fields = {
                "battery_v": None if tel is None else tel.battery_v,
                "link_state": link.state,
                "firmware_state": "-" if tel is None else tel.state,
            }
        self._refresh_figures(StatsSnapshot(**{**snap.__dict__, **fields}))

    # -- messages up -------------------------------------------------------------------------

    def on_stats_update(self, message: StatsUpdate) -> None:
        self._refresh_figures(message.stats)

    def on_log_line(self, message: LogLine) -> None:
        self.log_line(message.text, message.level)

    def on_drive_ended(self, message: DriveEnded) -> None:
        self.drive = None
        if self.state != "E-STOP":
            self.state = "STOPPED"
        summary = message.summary or {}
        figures = ""
        if summary.get("loop_p50_ms") is not None:
            figures = (
                f"; {summary.get('frames', 0)} frames, latency p50 "
                f"{summary['loop_p50_ms']:.2f} ms p99 {summary['loop_p99_ms']:.2f} ms"
            )
        self.log_line(f"stopped: {message.reason}{figures}", "info" if message.ok else "error")
        self.refresh_all()
        for handle in self.loop_processes:
            # its drive has ended and the process is ending: release it off the UI thread
            threading.Thread(target=handle.close, daemon=True).start()
        if self._quitting:
            self.exit()

    # -- the drive thread -----------------------------------------------------------------

    def _on_frame(self, status: Any) -> None:
        """Called by the drive loop on its thread for every frame: aggregate, post rarely."""
        self.stats.add(status)
        now = time.monotonic()
        if status.event is not None:
            last, t = self._last_event
            if status.event != last or now - t > 1.0:
                self._last_event = (status.event, now)
                self.post_message(LogLine(f"frame {status.frame}: {status.event}", "error"))
        if now - self._last_post >= STATS_PERIOD_S:
            self._last_post = now
            self.post_message(StatsUpdate(self.stats.snapshot()))

    def _on_batch(self, batch: FigureBatch) -> None:
        """Called on the loop process's receiver thread with each figure batch."""
        self.stats.add_rows(batch.rows, batch.last)
        if batch.laps is not None:
            self._loop_laps = batch.laps
        now = time.monotonic()
        for frame, _t, _ms, _miss, event in batch.rows:
            if event is not None:
                last, t = self._last_event
                if event != last or now - t > 1.0:
                    self._last_event = (event, now)
                    self.post_message(LogLine(f"frame {frame}: {event}", "error"))
        self._last_post = now
        self.post_message(StatsUpdate(self.stats.snapshot()))

    def _start_loop_process(self, recipe: DriveRecipe, model: Any) -> None:
        """Start the drive in its own process (`vehicle.console.loop_process`)."""
        name = None if model is None or isinstance(model, CommandLineModel) else model.name
        handle = LoopProcess(
            recipe,
            name,
            max_speed_fraction=self.max_speed,
            on_figures=self._on_batch,
            on_log=lambda text, level: self.post_message(LogLine(text, level)),
            on_end=lambda reason, ok, summary: self.post_message(DriveEnded(reason, ok, summary)),
        )
        self._loop_laps = None
        self.loop_processes.append(handle)
        self.camera = handle  # type: ignore[assignment]  # `.last`: the newest preview
        self.drive = handle.start()
        self.log_line(f"driving {model.name} at max speed {self.max_speed:.0%}")

    def _drive_worker(self, model: Any) -> None:
        """Thread worker: open the drive (policy, camera, link as the parts say), run it,
        post how it ended. Nothing moves before `Drive.run()` arms the firmware."""
        try:
            assert self.parts.open_drive is not None
            with self.parts.open_drive(model, self._on_frame) as drive:
                self.camera = TeeCamera(drive.camera)
                drive.camera = self.camera
                drive.max_speed_fraction = self.max_speed
                if self._cancel_start:
                    self.post_message(DriveEnded("STOP before the start", True))
                    return
                self.drive = drive
                self.post_message(
                    LogLine(f"driving {model.name} at max speed {self.max_speed:.0%}")
                )
                result = drive.run()
            self.post_message(DriveEnded(result.stop_reason, result.ok, result.summary()))
        except Exception as exc:  # refusal to start, model load error: shown, car neutral
            if self.parts.link is not None:
                self.parts.link.neutral()
            self.post_message(DriveEnded(f"{type(exc).__name__}: {exc}", False))
        finally:
            self.drive = None

    # -- actions ---------------------------------------------------------------------------

    def action_stop(self) -> None:
        if self.parts.link is not None:
            self.parts.link.neutral()
        self._cancel_start = True
        if self.drive is not None:
            self.drive.emergency_stop()
        if self.state == "RUNNING":
            self.state = "E-STOP"
        self.log_line("STOP: neutral, disarmed", "error")
        self._refresh_head()
        self._refresh_figures(self.stats.snapshot())

    def action_start(self) -> None:
        if self.drive is not None or self.state in ("STARTING", "RUNNING"):
            return
        if self.model is None:
            self.log_line("no model chosen: press m", "error")
            return
        self.state = "RUNNING"
        self._cancel_start = False
        self.stats = LiveStats()
        if self.parts.recipe is not None:
            try:
                self._start_loop_process(self.parts.recipe, self.model)
            except Exception as exc:  # the process did not start: nothing moves
                self.post_message(DriveEnded(f"{type(exc).__name__}: {exc}", False))
        else:
            self.run_worker(lambda: self._drive_worker(self.model), thread=True, group="drive")
        self._refresh_figures(self.stats.snapshot())

    def action_halt(self) -> None:
        if self.drive is not None:
            self.drive.stop("stopped from the console")

    def action_speed(self, direction: int) -> None:
        self.max_speed = round(min(1.0, max(0.0, self.max_speed + direction * SPEED_STEP)), 2)
        if self.drive is not None:
            self.drive.max_speed_fraction = self.max_speed
        self._refresh_figures(self.stats.snapshot())

    def action_models(self) -> None:
        if not isinstance(self.screen, ModelsScreen):
            self.push_screen(ModelsScreen())

    async def action_quit(self) -> None:
        if self.drive is not None:
            self._quitting = True
            self.drive.stop("quit")
            return
        self.exit()


def run(args: Any, parts: ConsoleParts | None = None) -> int:
    """Run the console: `racer drive` in a terminal calls `run(args)`; `parts` may be given
    by a caller that has the pieces open already (simulation). The car is neutral and
    disarmed when this returns, however the console ended."""
    if parts is None:
        parts = parts_from_args(args)
    app = DriveConsole(parts, auto_start=bool(getattr(args, "start", False)))
    try:
        app.run()
    finally:
        if app.drive is not None:
            app.drive.emergency_stop()
        if parts.link is not None:
            parts.link.neutral()
        for handle in app.loop_processes:
            handle.close()  # the loop process has stopped the car and ended
    return int(app.return_code or 0)


def open_store(root: Any = None) -> Any:
    """The car's `vehicle.models.store.ModelStore` at `root` (None: the default folder). Raises
    `StoreUnavailableError` naming the folder and the cause."""
    try:
        from vehicle.models.store import ModelStore

        return ModelStore(root)
    except Exception as exc:
        where = (
            root if root is not None else "($OPENRACER_STORE or ~/.local/share/openracer/models)"
        )
        raise StoreUnavailableError(
            f"model store {where}: cannot open ({type(exc).__name__}: {exc}); choose "
            "another folder with --store, or drive a model file with --model FILE"
        ) from exc


def parts_from_args(args: Any) -> ConsoleParts:
    """Parts for `racer drive`'s options: each start builds the drive exactly as the
    headless command would: in a process of its own from `args.drive_recipe` (a
    `DriveRecipe`), else in this process from `args.make_drive(on_frame)` (a context
    manager whose `.drive` is ready), with `args.model` set to the model chosen in the
    console."""
    recipe = getattr(args, "drive_recipe", None)
    make_drive = getattr(args, "make_drive", None)
    if recipe is None and not callable(make_drive):
        raise TypeError(
            "racer drive's arguments carry neither a drive_recipe nor a make_drive(on_frame)"
        )

    @contextmanager
    def open_drive(model: Any, on_frame: Callable[[Any], None]) -> Iterator[Any]:
        if model is not None and not isinstance(model, CommandLineModel):
            args.model = model.name  # a store model, by name
        assert make_drive is not None
        with make_drive(on_frame) as session:
            yield session.drive

    store, store_error = None, None
    try:
        store = open_store(getattr(args, "store", None))
    except StoreUnavailableError as exc:
        store_error = exc  # the console still drives a --model FILE; the picker says why
    model = getattr(args, "model", None)
    max_speed = getattr(args, "max_speed", None)
    return ConsoleParts(
        open_drive=None if recipe is not None else open_drive,
        recipe=recipe,
        store=store,
        store_error=store_error,
        max_speed_fraction=0.5 if max_speed is None else float(max_speed),
        title=str(getattr(args, "port", "") or ""),
        initial_model=None if model is None else CommandLineModel(str(model)),
    )
