"""The `racer drive` console driven as a person would (Textual Pilot), against the real
firmware on the simulated board over a pty: start, STOP, max speed, model choice, quit;
and snapshots of its screens at 80x24 and 120x40."""

from __future__ import annotations

import time
from collections.abc import Iterator

import numpy as np
import pytest

from tests.pilot import run_async, until
from tests.screen_text import screen_text as text
from tests.vehicle.console.console_parts import FakeModel, FakeStore, Rig, SyntheticCamera
from vehicle.camera import Frame
from vehicle.console.app import ConsoleParts, DriveConsole, LapTimes, ModelsScreen, TeeCamera
from vehicle.drive import DriveConfig
from vehicle.errors import StoreUnavailableError
from vehicle.link import Telemetry
from vehicle.pulses import PulseCalibration

pytestmark = pytest.mark.slow  # each test runs the console and the simulated board


def _eventually_disarmed(rig: Rig, timeout_s: float = 20.0) -> None:
    """The drive thread finishes after the app has gone: the firmware ends disarmed, at
    neutral (possibly via its own failsafe first)."""
    deadline = time.monotonic() + timeout_s
    while rig.link.telemetry().state != "disarmed" and time.monotonic() < deadline:
        time.sleep(0.05)
    tel = rig.link.telemetry()
    assert tel.state == "disarmed" and tel.throttle_us == PulseCalibration().throttle.mid_us


@pytest.fixture
def rig() -> Iterator[Rig]:
    r = Rig()
    yield r
    r.close()


@run_async
async def test_start_drives_the_car_and_space_stops_it(rig: Rig) -> None:
    app = DriveConsole(rig.parts)
    async with app.run_test(size=(80, 24)) as pilot:
        await until(pilot, lambda: "model reinvent-v3" in text(app))
        await pilot.press("enter")
        await until(pilot, lambda: rig.policies and rig.policies[-1].calls > 10)
        # the firmware outputs what the policy asked for: 10 deg left, forward
        ctrl = rig.sim.controller
        await until(pilot, lambda: rig.sim.physics.speed_mps > 0.2)
        assert rig.sim.physics.steer_deg > 5.0
        await until(pilot, lambda: "RUNNING" in text(app) and "Hz" in text(app))
        screen = text(app)
        assert "+10.0 deg 0.80 m/s" in screen and "up / armed" in screen
        await pilot.press("space")
        await until(pilot, lambda: app.drive is None)
        assert app.state == "E-STOP"
        await until(pilot, lambda: "STOP: neutral, disarmed" in text(app))
        # the newest telemetry may be one the firmware sent before it took the DISARM
        # (its ACK came later on the same line): wait for one sent after
        await until(pilot, lambda: rig.link.telemetry().state == "disarmed")
        assert rig.link.telemetry().throttle_us == PulseCalibration().throttle.mid_us
        await until(pilot, lambda: "stopped: emergency stop" in text(app))
        del ctrl


@run_async
async def test_max_speed_keys_change_the_running_drive(rig: Rig) -> None:
    app = DriveConsole(rig.parts)
    async with app.run_test(size=(80, 24)) as pilot:
        await until(pilot, lambda: app.model is not None)
        await pilot.press("enter")
        await until(pilot, lambda: app.drive is not None)
        await pilot.press("minus", "minus", "plus", "minus")
        await until(pilot, lambda: "50 %" in text(app))
        assert app.drive.max_speed_fraction == pytest.approx(0.5)
        await pilot.press("s")
        await until(pilot, lambda: app.drive is None)
        assert "stopped: stopped from the console" in text(app)
        await until(pilot, lambda: rig.link.telemetry().state == "disarmed")


@run_async
async def test_choose_a_model_from_the_store(rig: Rig) -> None:
    app = DriveConsole(rig.parts)
    async with app.run_test(size=(80, 24)) as pilot:
        await until(pilot, lambda: app.model is not None)
        await pilot.press("m")
        await until(pilot, lambda: isinstance(app.screen, ModelsScreen))
        screen = text(app)
        assert "reinvent-v3" in screen and "oval-fast" in screen
        assert "sha256 mismatch" in screen
        await pilot.press("down", "enter")
        await until(pilot, lambda: app.model.name == "oval-fast")
        await pilot.press("m")
        await until(pilot, lambda: isinstance(app.screen, ModelsScreen))
        await pilot.press("down", "down", "enter")
        await until(pilot, lambda: "sha256 mismatch" in text(app))
        assert app.model.name == "oval-fast"  # a broken model is refused
        await pilot.press("enter")
        await until(pilot, lambda: rig.policies and rig.policies[-1].calls > 0)
        await pilot.press("m", "escape")  # the store screen also has space = STOP
        await pilot.press("q")
    _eventually_disarmed(rig)


@run_async
async def test_without_a_store_the_console_says_so(rig: Rig) -> None:
    rig.parts.store = None
    app = DriveConsole(rig.parts)
    async with app.run_test(size=(80, 24)) as pilot:
        await until(pilot, lambda: "no model store in this install" in text(app))
        await pilot.press("enter")
        await until(pilot, lambda: "no model chosen" in text(app))
        assert rig.policies == []


# ---- snapshots ------------------------------------------------------------------------


class FixedLink:
    """A link with fixed telemetry, for deterministic snapshots."""

    state = "up"

    def latest_telemetry(self) -> Telemetry:
        return Telemetry(
            state="disarmed",
            faults=0,
            battery_mv=7640,
            frames_ok=10,
            frames_bad=0,
            since_cmd_ms=65535,
            steer_us=1450,
            throttle_us=1446,
            loop_errors=0,
            last_cmd_seq=0,
            uptime_ms=1000,
            failsafes=0,
            received_s=0.0,
        )

    def neutral(self) -> None:
        pass


def _snapshot_app() -> DriveConsole:
    store = FakeStore(
        [
            FakeModel("reinvent-v3", is_active=True),
            FakeModel("oval-fast", is_previous=True),
            FakeModel("broken", metadata=None, problem="model.tflite: sha256 mismatch"),
        ]
    )
    parts = ConsoleParts.from_pieces(
        camera=SyntheticCamera(),
        link=FixedLink(),
        calibration=PulseCalibration(),
        config=DriveConfig(max_speed_fraction=0.6),
        load_policy=lambda m: None,
        store=store,
        laps=lambda: LapTimes(12.3, 14.1, 13.9, 3),
        title="simulated board",
    )
    app = DriveConsole(parts, clock=lambda: 100.0)
    app.camera = TeeCamera(SyntheticCamera())
    app.camera.last = Frame(SyntheticCamera().image, 0.0, 1, "bgr")
    return app


@pytest.mark.parametrize("size", [(80, 24), (120, 40)], ids=["80x24", "120x40"])
@pytest.mark.parametrize("screen", ["drive", "models"])
def test_console_snapshot(snap_compare, screen: str, size: tuple[int, int]) -> None:  # type: ignore[no-untyped-def]
    app = _snapshot_app()

    async def run_before(pilot) -> None:  # type: ignore[no-untyped-def]
        await until(pilot, lambda: "battery   7.64 V" in text(app))
        if screen == "models":
            await pilot.press("m")
            await until(pilot, lambda: isinstance(app.screen, ModelsScreen))
        await pilot.pause(0.3)

    assert snap_compare(app, terminal_size=size, run_before=run_before)


def test_live_stats_percentiles_and_rate() -> None:
    from vehicle.console.app import LiveStats
    from vehicle.drive import FrameStatus

    stats = LiveStats(window=100)
    for i in range(101):
        stats.add(
            FrameStatus(
                frame=i,
                t_s=i / 15.0,
                steer_deg=1.0,
                speed_mps=0.5,
                steer_us=1460,
                throttle_us=1400,
                loop_ms=float(i % 100) + 1.0,
                stages_ms={},
                deadline_miss=i == 50,
                event="stale_frame" if i == 7 else None,
                telemetry=None,
                link_state="up",
            )
        )
    snap = stats.snapshot()
    assert snap.rate_hz == pytest.approx(15.0)
    assert snap.p50_ms == pytest.approx(
        float(np.percentile([(i % 100) + 1.0 for i in range(1, 101)], 50))
    )
    assert snap.p99_ms > 98 and snap.misses == 1 and snap.faults == 1
    assert snap.frames == 100 and snap.steer_us == 1460


@run_async
async def test_racer_drive_arguments_build_each_drive(rig: Rig) -> None:
    """The `racer drive` path: `args.make_drive(on_frame)` builds the drive for each start,
    with `args.model` set to the model chosen in the console."""
    import argparse
    from contextlib import contextmanager

    from vehicle.console.app import parts_from_args

    built: list[str | None] = []
    pieces = rig.parts

    @contextmanager
    def make_drive(on_frame):  # type: ignore[no-untyped-def]
        built.append(args.model)
        with pieces.open_drive(FakeModel(args.model or "active"), on_frame) as drive:

            class Session:
                pass

            session = Session()
            session.drive = drive  # type: ignore[attr-defined]
            yield session

    args = argparse.Namespace(model=None, store=None, max_speed=0.3, port="/dev/pty-sim")
    args.make_drive = make_drive
    parts = parts_from_args(args)
    parts.store = rig.store  # the fake store instead of the car's folder
    parts.link = rig.link
    app = DriveConsole(parts)
    async with app.run_test(size=(80, 24)) as pilot:
        await until(pilot, lambda: app.model is not None and "30 %" in text(app))
        await pilot.press("m")
        await until(pilot, lambda: isinstance(app.screen, ModelsScreen))
        await pilot.press("down", "enter")
        await until(pilot, lambda: app.model.name == "oval-fast")
        await pilot.press("enter")
        await until(pilot, lambda: rig.policies and rig.policies[-1].calls > 3)
        assert built == ["oval-fast"]
        assert app.drive.max_speed_fraction == pytest.approx(0.3)
        await pilot.press("space")
        await until(pilot, lambda: app.drive is None)
    _eventually_disarmed(rig)


def test_open_store_names_the_folder_and_the_cause() -> None:
    from vehicle.console.app import open_store

    with pytest.raises(StoreUnavailableError, match="no-such-user-openracer.*RuntimeError") as e:
        open_store("~no-such-user-openracer/models")
    assert isinstance(e.value.__cause__, RuntimeError)


@run_async
async def test_a_store_that_cannot_open_is_shown_not_hidden(rig: Rig) -> None:
    """`racer drive --store` naming a folder that cannot be resolved: the console still
    starts (a --model FILE drives), and both the log tail and the model picker say why."""
    import argparse

    from vehicle.console.app import parts_from_args

    args = argparse.Namespace(
        model=None, store="~no-such-user-openracer/models", max_speed=0.3, port="/dev/pty-sim"
    )
    args.make_drive = lambda on_frame: None  # never started here
    parts = parts_from_args(args)
    assert parts.store is None and isinstance(parts.store_error, StoreUnavailableError)
    parts.link = rig.link
    app = DriveConsole(parts)
    async with app.run_test(size=(100, 30)) as pilot:
        await until(pilot, lambda: any("cannot open" in line.plain for line in app.log_lines))
        await pilot.press("m")
        await until(pilot, lambda: isinstance(app.screen, ModelsScreen))
        await until(pilot, lambda: "~no-such-user-openracer/models: cannot open" in text(app))
        assert "RuntimeError: Could not determine home" in text(app)
