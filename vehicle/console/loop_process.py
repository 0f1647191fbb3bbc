"""The process boundary of the `racer drive` console: the drive loop (camera, inference,
link) runs in a process of its own, so whatever the screen does (Textual, the half-block
camera view, a slow SSH link) never holds the loop's interpreter lock.

    console process (this module's `LoopProcess`)     loop process (`_loop_main`, spawned)
    ------------------------------------------------  -----------------------------------------
    start(model)                                  ->  recipe.open_drive(model, on_frame); run()
    stop(reason) / emergency_stop() / max speed   ->  control thread: Drive.stop / .emergency_stop
                         (a Pipe; end of file = the console died -> emergency stop)
    on_figures(batch)  every 0.2 s                <-  `FigureBatch`: per-frame latency rows, the
    on_preview(image)  every 0.5 s                <-  last status, laps; a frame scaled down for
    on_log(text, level), on_end(reason, ok, ...)  <-  the view; log records; the drive's result
                         (a Queue: `put` never blocks, so a console that stops reading
                         cannot stall the loop)

Failsafe paths, the drive loop's own rules unchanged (`vehicle.drive`):
- STOP, quit, or a console that raises: `emergency_stop`/`stop` cross the pipe and the
  loop sends neutral first, then ends and disarms;
- the console process dies (killed, crashed, SSH gone): the control pipe reads end of
  file in the loop process, which sends neutral, stops and disarms;
- the loop process dies: the console sees its exit without a result and says so
  (`on_end(..., ok=False)`); the link's command repeats died with it, so the firmware's
  own 100 ms failsafe holds the car at neutral.

CPU: separate processes end the sharing of one interpreter lock, not the sharing of the
CPU. Once it has started a loop process the console lowers its own priority
(`CONSOLE_NICE`), so on a busy CPU the kernel runs the loop first and the screen waits.

Runs on the car: no Textual and no training stack are imported here or in the loop
process (`multiprocessing` spawn imports only what the recipe names).
"""

from __future__ import annotations

import contextlib
import logging
import multiprocessing
import os
import queue
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from typing import Any

FIGURES_PERIOD_S = 0.2
"""The loop process sends figures at most this often (5 Hz)."""
PREVIEW_PERIOD_S = 0.5
"""...and a camera frame for the view at most this often (2 fps)."""
PREVIEW_MAX_WIDTH = 320
"""Frames for the view are scaled down to at most this width in the loop process (a
terminal cell row is far narrower), so a few tens of kB cross the boundary."""
END_GRACE_S = 5.0
"""How long `close` waits for the loop process to stop on its own before ending it."""
CONSOLE_NICE = 10
"""How many nice steps below the loop the console runs once it has started a loop
process (Linux): on a busy CPU the screen waits, not the car."""

_launcher = ThreadPoolExecutor(max_workers=1, thread_name_prefix="loop-launcher")
"""Starts every loop process. Linux keeps the nice value per thread and a process
inherits the one of the thread that started it; this thread is made by the first start,
before the console lowers its own priority, so each loop process keeps the priority the
console had."""


@dataclass(frozen=True)
class DriveRecipe:
    """How the loop process opens a drive; pickled into it, so everything here must be a
    module-level function (or a `functools.partial` of one) over picklable values."""

    open_drive: Callable[[str | None, Callable[[Any], None]], AbstractContextManager[Any]]
    """(model name from the store, or None for the command line's / the default one,
    on_frame) -> a context manager giving a ready `vehicle.drive.Drive` (not yet run) and
    closing whatever it opened when it exits."""
    lap_times: Callable[[Any], Any] | None = None
    """(the open drive) -> `vehicle.console.figures.LapTimes`, when the world knows laps
    (the simulator); read in the loop process with each figure batch."""
    loggers: tuple[str, ...] = ("vehicle",)
    """Loggers whose records (INFO and up) the loop process forwards to the console."""


@dataclass
class FigureBatch:
    """What the loop did since the last batch (sent every `FIGURES_PERIOD_S`)."""

    rows: list[tuple[int, float, float | None, bool, str | None]] = field(default_factory=list)
    """Per iteration: (frame, t_s, loop_ms, deadline_miss, event)."""
    last: Any = None
    """The newest `vehicle.drive.FrameStatus`."""
    laps: Any = None
    """`LapTimes` when the world knows laps, else None."""


@dataclass(frozen=True)
class _Preview:
    image: Any
    color_order: str


@dataclass(frozen=True)
class _Log:
    text: str
    level: str


@dataclass(frozen=True)
class _Ended:
    reason: str
    ok: bool
    summary: dict[str, Any] | None


class LoopProcess:
    """The console's handle on one drive running in its own process. `start()` spawns
    it; the callbacks run on a receiver thread of the console process (they should only
    post messages); `stop`, `emergency_stop` and `max_speed_fraction` reach the loop
    through the control pipe. `last` is the newest preview frame (for the camera view)."""

    def __init__(
        self,
        recipe: DriveRecipe,
        model: str | None,
        *,
        max_speed_fraction: float,
        on_figures: Callable[[FigureBatch], None],
        on_preview: Callable[[Any], None] | None = None,
        on_log: Callable[[str, str], object],
        on_end: Callable[[str, bool, dict[str, Any] | None], object],
    ) -> None:
        self.recipe = recipe
        self.model = model
        self._max_speed = float(max_speed_fraction)
        self.on_figures, self.on_preview = on_figures, on_preview
        self.on_log, self.on_end = on_log, on_end
        self.last: Any = None
        ctx = multiprocessing.get_context("spawn")
        child_control, self._control = ctx.Pipe(duplex=False)  # (reader, writer)
        self._child_control = child_control
        with real_std_streams():
            self._out: Any = ctx.Queue()
        self.process = ctx.Process(
            target=_loop_main,
            args=(recipe, model, self._max_speed, child_control, self._out),
            name="racer-drive-loop",
            daemon=False,  # it must outlive a crashing console long enough to stop the car
        )
        self._lock = threading.Lock()
        self._receiver: threading.Thread | None = None
        self.ended = threading.Event()

    # -- console side -------------------------------------------------------------------

    def start(self) -> LoopProcess:
        start_process(self.process)
        self._child_control.close()  # only the loop process holds it: its end = our death
        self._receiver = threading.Thread(target=self._receive, name="loop-receiver", daemon=True)
        self._receiver.start()
        return self

    def stop(self, reason: str = "stopped") -> None:
        """End the drive (neutral first, in the loop process)."""
        self._send(("stop", reason))

    def emergency_stop(self, reason: str = "emergency stop") -> None:
        """Neutral now, disarm, end the drive."""
        self._send(("estop", reason))

    @property
    def max_speed_fraction(self) -> float:
        return self._max_speed

    @max_speed_fraction.setter
    def max_speed_fraction(self, value: float) -> None:
        self._max_speed = float(value)
        self._send(("max_speed", self._max_speed))

    def close(self, timeout_s: float = END_GRACE_S) -> None:
        """Stop the drive if it still runs, wait for the process to end (terminate it
        after `timeout_s`: SIGTERM is neutral-first there), release the pipes. Safe to
        call more than once, from any thread."""
        if self.process.pid is None:
            return  # never started
        if self.process.is_alive():
            self.emergency_stop()
            self.process.join(timeout_s)
        if self.process.is_alive():
            self.process.terminate()
            self.process.join(timeout_s)
        with self._lock, contextlib.suppress(OSError):
            self._control.close()
        if self._receiver is not None:
            self._receiver.join(timeout=2.0)

    def _send(self, message: tuple[str, Any]) -> None:
        with self._lock:
            try:
                self._control.send(message)
            except (OSError, ValueError):
                pass  # the loop process is gone: the receiver reports it

    def _receive(self) -> None:
        """Receiver thread: hand each message to its callback until the drive ended or
        the loop process died without saying so."""
        ended = False
        while not ended:
            try:
                msg = self._out.get(timeout=0.2)
            except queue.Empty:
                if self.process.is_alive():
                    continue
                try:  # anything sent just before the end
                    msg = self._out.get(timeout=0.5)
                except queue.Empty:
                    break
            ended = self._dispatch(msg)
        if not ended:
            code = self.process.exitcode
            how = f"signal {-code}" if code is not None and code < 0 else f"exit code {code}"
            self.on_end(
                f"the drive loop process died ({how}); the firmware's failsafe holds the "
                "car at neutral",
                False,
                None,
            )
        self.ended.set()

    def _dispatch(self, msg: Any) -> bool:
        if isinstance(msg, FigureBatch):
            self.on_figures(msg)
        elif isinstance(msg, _Preview):
            self.last = msg
            if self.on_preview is not None:
                self.on_preview(msg)
        elif isinstance(msg, _Log):
            self.on_log(msg.text, msg.level)
        elif isinstance(msg, _Ended):
            self.on_end(msg.reason, msg.ok, msg.summary)
            return True
        return False


def start_process(process: Any) -> None:
    """Start a `multiprocessing` (spawn) process from the console: with the interpreter's
    own std streams, from the launcher thread (so it keeps the console's first priority),
    then lower the console's own (`CONSOLE_NICE`). The calibrator's command stream uses
    it too (`calibration.stream_process`)."""
    with real_std_streams():
        _launcher.submit(process.start).result()
    _lower_console_priority()


def _lower_console_priority() -> None:
    """The calling (console) thread to `CONSOLE_NICE` steps below the loop processes, and
    the threads it starts from now on (Linux: per thread; elsewhere nothing changes)."""
    if not sys.platform.startswith("linux"):
        return
    base = _launcher.submit(os.getpriority, os.PRIO_PROCESS, 0).result()
    with contextlib.suppress(OSError):
        if os.getpriority(os.PRIO_PROCESS, 0) < base + CONSOLE_NICE:
            os.setpriority(os.PRIO_PROCESS, 0, min(19, base + CONSOLE_NICE))


@contextlib.contextmanager
def real_std_streams() -> Iterator[None]:
    """The interpreter's own stdout/stderr for a moment: multiprocessing passes stderr's
    file descriptor to the helper process it starts on first use (its resource
    tracker), and inside a running Textual app sys.stderr is Textual's capture, whose
    descriptor is -1."""
    saved = sys.stdout, sys.stderr
    sys.stdout, sys.stderr = sys.__stdout__, sys.__stderr__
    try:
        yield
    finally:
        sys.stdout, sys.stderr = saved


# -- loop process side --------------------------------------------------------------------


class _Sender:
    """The drive's `on_frame` in the loop process: a row per iteration, and every
    `FIGURES_PERIOD_S` one batch on the queue (after the command was written, so the
    iteration's latency never includes it); a scaled-down frame every `PREVIEW_PERIOD_S`."""

    def __init__(self, out: Any) -> None:
        self.out = out
        self.batch = FigureBatch()
        self.lap_times: Callable[[], Any] | None = None
        self.camera: Any = None
        self._next_figures = 0.0
        self._next_preview = 0.0

    def __call__(self, status: Any) -> None:
        self.batch.rows.append(
            (status.frame, status.t_s, status.loop_ms, status.deadline_miss, status.event)
        )
        self.batch.last = status
        now = time.monotonic()
        if now >= self._next_figures:
            self._next_figures = now + FIGURES_PERIOD_S
            self.flush()
        if now >= self._next_preview and self.camera is not None:
            self._next_preview = now + PREVIEW_PERIOD_S
            frame = self.camera.last
            if frame is not None:
                self.out.put(_Preview(_small(frame.image), frame.color_order))

    def flush(self) -> None:
        if not self.batch.rows:
            return
        if self.lap_times is not None:
            with contextlib.suppress(Exception):
                self.batch.laps = self.lap_times()
        self.out.put(self.batch)
        self.batch = FigureBatch()


def _small(image: Any) -> Any:
    import cv2

    h, w = image.shape[:2]
    if w <= PREVIEW_MAX_WIDTH:
        return image.copy()
    size = (PREVIEW_MAX_WIDTH, max(1, round(h * PREVIEW_MAX_WIDTH / w)))
    return cv2.resize(image, size, interpolation=cv2.INTER_AREA)


class _QueueLog(logging.Handler):
    def __init__(self, out: Any) -> None:
        super().__init__(logging.INFO)
        self.out = out

    def emit(self, record: logging.LogRecord) -> None:
        level = "error" if record.levelno >= logging.WARNING else "info"
        self.out.put(_Log(f"{record.name}: {record.getMessage()}", level))


class _Control:
    """The control thread's view of the drive: commands that arrive before the drive is
    open are kept (a STOP before the start cancels it)."""

    def __init__(self, max_speed: float) -> None:
        self.lock = threading.Lock()
        self.drive: Any = None
        self.cancelled: str | None = None
        self.max_speed = max_speed
        self.console_gone = threading.Event()
        """Set when the control pipe ended: nobody reads the queue any more."""

    def handle(self, kind: str, value: Any) -> None:
        with self.lock:
            drive = self.drive
            if kind == "max_speed":
                self.max_speed = float(value)
                if drive is not None:
                    drive.max_speed_fraction = self.max_speed
                return
            if drive is None:
                self.cancelled = self.cancelled or str(value)
                return
        if kind == "estop":
            drive.emergency_stop(str(value))
        else:
            drive.stop(str(value))


def _listen(conn: Any, control: _Control) -> None:
    """Control thread: the console's commands; end of file means the console died."""
    while True:
        try:
            kind, value = conn.recv()
        except (EOFError, OSError):
            control.console_gone.set()
            control.handle("estop", "the console ended: neutral, stopped")
            return
        control.handle(kind, value)


def quiet_terminal() -> None:
    """The console draws on the terminal this process inherited: nothing of ours may
    write there (faults reach the console through the queue instead)."""
    devnull = os.open(os.devnull, os.O_RDWR)
    for fd in (0, 1, 2):
        os.dup2(devnull, fd)
    os.close(devnull)


def _loop_main(
    recipe: DriveRecipe, model: str | None, max_speed: float, conn: Any, out: Any
) -> None:
    """The loop process: open the drive from the recipe, run it on this (main) thread,
    report how it ended. The console owns the keyboard: Ctrl-C is its to handle (if it
    dies of it, the control pipe says so); SIGTERM and SIGHUP stop the car here, neutral
    first."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    quiet_terminal()
    control = _Control(max_speed)
    for sig in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(
            sig, lambda signum, _f: control.handle("estop", f"signal {signal.Signals(signum).name}")
        )
    handler = _QueueLog(out)
    for name in recipe.loggers:
        logging.getLogger(name).addHandler(handler)
        if logging.getLogger(name).getEffectiveLevel() > logging.INFO:
            logging.getLogger(name).setLevel(logging.INFO)
    threading.Thread(target=_listen, args=(conn, control), name="loop-control", daemon=True).start()
    sender = _Sender(out)
    ended = _Ended("the drive did not start", False, None)
    try:
        from dataclasses import replace

        from vehicle.console.figures import TeeCamera

        with recipe.open_drive(model, sender) as drive:
            # the signal handlers above are this process's; the drive installs none
            drive.config = replace(drive.config, handle_signals=False)
            sender.camera = drive.camera = TeeCamera(drive.camera)
            if recipe.lap_times is not None:
                lap_times = recipe.lap_times
                sender.lap_times = lambda: lap_times(drive)
            with control.lock:
                drive.max_speed_fraction = control.max_speed
                cancelled = control.cancelled
                if cancelled is None:
                    control.drive = drive
            if cancelled is not None:
                ended = _Ended(f"STOP before the start ({cancelled})", True, None)
            else:
                result = drive.run()
                sender.flush()
                ended = _Ended(result.stop_reason, result.ok, result.summary())
    except Exception as exc:  # refusal to start, a model that does not load: shown
        ended = _Ended(f"{type(exc).__name__}: {exc}", False, None)
    finally:
        out.put(ended)
        out.close()
        flush_or_abandon(out, control.console_gone)


def flush_or_abandon(out: Any, reader_gone: threading.Event) -> None:
    """Hand the reader what is still queued on `out` (a closed multiprocessing queue),
    unless the reader is gone: a dead reader never empties the pipe, and waiting for it
    (`join_thread`, also run at exit) would keep this process alive for ever, most likely
    on a busy machine, where the queue has fallen furthest behind."""
    joiner = threading.Thread(target=out.join_thread, name="queue-flush", daemon=True)
    joiner.start()
    while joiner.is_alive():
        if reader_gone.is_set():
            out.cancel_join_thread()
            return
        joiner.join(0.1)
