"""The calibrator's command stream in a process of its own: the 50 Hz `Actuator` loop and
the serial link run there, so the camera preview repainting in the calibrator's terminal
never holds the stream's interpreter lock.

    calibrator process (`StreamProcess`)              stream process (`_stream_main`, spawned)
    ------------------------------------------------  ----------------------------------------
    steer / hold / run_for / stop / neutral /     ->  control thread: the same `Actuator` calls
    set_neutral / shutdown                            (a Pipe; end of file = the calibrator died
                                                      -> `Actuator.shutdown`: neutral, disarm)
    loop(post, stop_event): post(status)          <-  `Actuator.loop` posting `ActuatorStatus`
                                                      (a Queue: `put` never blocks the stream)

The deadman, the timed runs and every neutral rule are the `Actuator`'s own, unchanged
(`calibration.actuator`); they now run next to the link. If the stream process dies, the
link's command repeats die with it and the firmware's own failsafe stops the motor within
100 ms; the calibrator shows the link as lost.

Runs on the car: no Textual here or in the stream process.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import queue
import signal
import threading
from collections.abc import Callable
from typing import Any

from calibration.actuator import Actuator, ActuatorConfig, ActuatorStatus
from vehicle.console.loop_process import (
    flush_or_abandon,
    quiet_terminal,
    real_std_streams,
    start_process,
)
from vehicle.link import LinkConfig
from vehicle.pulses import PulseCalibration

END_GRACE_S = 3.0
"""How long `shutdown` waits for the stream process to end on its own."""


class StreamProcess:
    """The `Actuator` seen from the calibrator when the stream runs in its own process:
    the same calls (they cross a pipe), and `loop` relays the stream's statuses.
    `open_link` (picklable: a module-level function or a `functools.partial` of one)
    opens the link there."""

    def __init__(
        self,
        open_link: Callable[[], Any],
        pulses: PulseCalibration,
        *,
        config: ActuatorConfig | None = None,
    ) -> None:
        self.config = config or ActuatorConfig()
        ctx = multiprocessing.get_context("spawn")
        child_control, self._control = ctx.Pipe(duplex=False)  # (reader, writer)
        with real_std_streams():
            self._out: Any = ctx.Queue()
        self.process = ctx.Process(
            target=_stream_main,
            args=(open_link, pulses, self.config, child_control, self._out),
            name="racer-calibrate-stream",
        )
        self._child_control = child_control
        self._lock = threading.Lock()
        self._run_id = 0
        self._closed = False

    # -- the Actuator's calls ------------------------------------------------------------

    def set_neutral(self, steer_mid_us: int, throttle_neutral_us: int) -> None:
        self._send("set_neutral", steer_mid_us, throttle_neutral_us)

    def steer(self, steer_us: int) -> None:
        self._send("steer", steer_us)

    def hold(self, throttle_us: int) -> None:
        self._send("hold", throttle_us)

    def run_for(self, throttle_us: int, duration_s: float) -> int:
        """As `Actuator.run_for`; the id counts the same way over there."""
        self._run_id += 1
        self._send("run_for", throttle_us, duration_s)
        return self._run_id

    def stop(self) -> None:
        self._send("stop")

    def neutral(self) -> None:
        self._send("neutral")

    def shutdown(self) -> None:
        """Neutral, disarm, end the stream process (safe to call more than once)."""
        if self._closed:
            return
        self._closed = True
        self._send("shutdown")
        if self.process.pid is not None:
            self.process.join(END_GRACE_S)
            if self.process.is_alive():
                self.process.terminate()  # SIGTERM: neutral, disarm there too
                self.process.join(END_GRACE_S)
        with self._lock, contextlib.suppress(OSError):
            self._control.close()

    # -- the worker thread ----------------------------------------------------------------

    def loop(self, post: Callable[[ActuatorStatus], None], stop_event: threading.Event) -> None:
        """Start the stream process and relay its statuses until `stop_event` is set or
        it ends; then shut it down (neutral, disarm)."""
        try:
            start_process(self.process)
            self._child_control.close()  # only the stream process holds it now
            while not stop_event.is_set():
                try:
                    post(self._out.get(timeout=0.1))
                except queue.Empty:
                    if not self.process.is_alive():
                        post(
                            _lost(
                                f"the command stream process ended (exit code "
                                f"{self.process.exitcode}); the firmware's failsafe holds "
                                "the car at neutral; restart racer calibrate"
                            )
                        )
                        return
        finally:
            self.shutdown()

    def _send(self, *message: Any) -> None:
        with self._lock:
            try:
                self._control.send(message)
            except (OSError, ValueError):
                pass  # the stream process is gone: `loop` reports it


def _lost(error: str) -> ActuatorStatus:
    """What the calibrator shows when the stream cannot go on."""
    return ActuatorStatus("lost", 0, 0, 0, error=error)


def _listen(conn: Any, actuator: Actuator, stop: threading.Event, gone: threading.Event) -> None:
    """Control thread: the calibrator's calls; end of file means it died."""
    while True:
        try:
            name, *args = conn.recv()
        except (EOFError, OSError):
            gone.set()
            name, args = "shutdown", []
        if name == "shutdown":
            actuator.shutdown()
            stop.set()
            return
        getattr(actuator, name)(*args)


def open_link(config: LinkConfig) -> Any:
    """The serial link, open (what `racer calibrate` gives `StreamProcess`, as
    `functools.partial(open_link, config)`)."""
    from vehicle.link import Link

    return Link(config).open()


def _stream_main(
    open_link: Callable[[], Any],
    pulses: PulseCalibration,
    config: ActuatorConfig,
    conn: Any,
    out: Any,
) -> None:
    """The stream process: open the link, run the actuator loop on this thread until the
    calibrator says stop or dies. Ctrl-C is the calibrator's to handle; SIGTERM and SIGHUP
    end the stream here, neutral first."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    quiet_terminal()
    stop = threading.Event()
    gone = threading.Event()  # the calibrator died: nobody reads `out` any more
    try:
        link = open_link()
    except Exception as exc:  # shown by the calibrator as a lost link
        out.put(_lost(f"{type(exc).__name__}: {exc}"))
        out.close()
        flush_or_abandon(out, gone)
        return
    actuator = Actuator(link, pulses, config=config)
    for sig in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, lambda _s, _f: stop.set())
    threading.Thread(target=_listen, args=(conn, actuator, stop, gone), daemon=True).start()
    try:
        actuator.loop(out.put, stop)  # neutral and disarmed when it returns
    finally:
        link.close()
        out.close()
        flush_or_abandon(out, gone)
