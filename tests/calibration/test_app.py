"""The calibrator driven as a person would: Textual Pilot presses keys; the tests check the
calibration values and the commands that reached the (simulated) link.

The app runs the link in a thread, so the tests wait for conditions (`until`) rather than
for Textual's idle detection.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from calibration.actuator import ActuatorConfig
from calibration.screens.base import ConfirmScreen, NumberPrompt
from calibration.screens.battery import BatteryScreen
from calibration.screens.camera import CameraScreen
from calibration.screens.review import ReviewScreen
from calibration.screens.speed import SpeedScreen
from calibration.screens.steering import SteeringScreen
from calibration.screens.throttle import ThrottleScreen
from calibration.store import CalibrationStore
from tests.calibration.conftest import make_app
from tests.calibration.fakes import FakeLink
from tests.pilot import goto, hold_key, run_async, until
from tests.screen_text import screen_text

pytestmark = pytest.mark.slow  # each test runs the app for a few seconds

NEUTRAL = 1446
CENTRE = 1450
SIZE = (80, 24)


def _sent(link: FakeLink, command: tuple[int, int]):  # type: ignore[no-untyped-def]
    return lambda: link.last_command() == command


# A deadman window no test outlives: one press of w runs the motor until something else
# stops it, so neutral after a key proves the key did it (on a loaded machine the 250 ms
# window could otherwise run out first). The window's own timing: test_actuator.py.
ENDLESS_HOLD = ActuatorConfig(period_s=0.02, deadman_s=3600.0)


async def _confirm(pilot, key: str) -> None:  # type: ignore[no-untyped-def]
    """Press `key`, expect the yes/no dialog, answer y and wait for it to close."""
    await pilot.press(key)
    await until(pilot, lambda: isinstance(pilot.app.screen, ConfirmScreen))
    await pilot.press("y")
    await until(pilot, lambda: not isinstance(pilot.app.screen, ConfirmScreen))


@run_async
async def test_steering_nudges_follow_live_and_sets_the_ends(
    tmp_path: Path, link: FakeLink
) -> None:
    app = make_app(tmp_path / "cal.json", link)
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, lambda: isinstance(app.screen, SteeringScreen))
        await pilot.press("right", "right", "right")
        await until(pilot, _sent(link, (CENTRE + 3, NEUTRAL)))
        await pilot.press(*["right_square_bracket"] * 8)  # +80 us
        await until(pilot, _sent(link, (CENTRE + 83, NEUTRAL)))
        await pilot.press("l", *["left_square_bracket"] * 16, "left", "left", "left")  # -163
        await until(pilot, _sent(link, (CENTRE - 80, NEUTRAL)))
        await pilot.press("r", "home", *["right"] * 5, "c")
        await until(pilot, _sent(link, (1455, NEUTRAL)))
        s = app.draft.steering
        assert (s.min_us, s.mid_us, s.max_us, s.polarity) == (1370, 1455, 1533, 1)
        # the measured angles
        await pilot.press("a")
        await until(pilot, lambda: isinstance(app.screen, NumberPrompt))
        await pilot.press("2", "8", "enter")
        await until(pilot, lambda: app.draft.steering.left_deg == 28.0)
        await pilot.press("2", "7", ".", "5", "enter")
        await until(pilot, lambda: app.draft.steering.right_deg == 27.5)
        assert "angle 28.0 deg" in screen_text(app)
        # the throttle never moved
        assert all(t == NEUTRAL for _, t in link.commands())


@run_async
async def test_steering_inconsistent_point_is_pending_not_applied(tmp_path: Path) -> None:
    app = make_app(tmp_path / "cal.json")
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, lambda: isinstance(app.screen, SteeringScreen))
        await pilot.press("l", "right_square_bracket", "right_square_bracket", "c")
        await until(pilot, lambda: "not applied yet" in screen_text(app))
        assert app.draft.steering.mid_us == CENTRE  # refused: centre beyond the left end
        assert "pending" in screen_text(app)
        await pilot.press("right_square_bracket", "right_square_bracket", "l")
        await until(pilot, lambda: app.draft.steering.max_us == 1490)
        s = app.draft.steering
        assert (s.min_us, s.mid_us, s.max_us) == (1200, 1470, 1490)


@run_async
async def test_throttle_needs_wheels_up_and_runs_only_while_held(
    tmp_path: Path, link: FakeLink
) -> None:
    app = make_app(tmp_path / "cal.json", link)
    async with app.run_test(size=SIZE) as pilot:
        await goto(pilot, "2", ThrottleScreen)
        await pilot.press(*["left_square_bracket"] * 4)  # target 1406
        await pilot.press("w")
        await until(pilot, lambda: isinstance(app.screen, ConfirmScreen))
        await pilot.press("n")  # not confirmed: nothing moves
        await until(pilot, lambda: isinstance(app.screen, ThrottleScreen))
        assert "motor stays off" in screen_text(app)
        await _confirm(pilot, "w")
        assert all(t == NEUTRAL for _, t in link.commands())
        start = len(link.commands())
        # holding w: the terminal's auto-repeat sends a press every ~40 ms
        await hold_key(pilot, "w", 30.0, until=lambda: (CENTRE, 1406) in link.commands()[start:])
        # released: neutral once the deadman window (250 ms) has passed
        await until(pilot, _sent(link, (CENTRE, NEUTRAL)))


@run_async
async def test_throttle_sets_neutral_forward_reverse(tmp_path: Path) -> None:
    app = make_app(tmp_path / "cal.json")
    async with app.run_test(size=SIZE) as pilot:
        await goto(pilot, "2", ThrottleScreen)
        await pilot.press(*["right_square_bracket"] * 5, "b")  # reverse 1496
        await pilot.press("home", *["left_square_bracket"] * 5, "f")  # forward 1396
        await pilot.press("home", "right", "right", "n")  # neutral 1448
        await until(pilot, lambda: app.draft.throttle.neutral_us == 1448)
        t = app.draft.throttle
        got = (t.forward_max_us, t.neutral_us, t.reverse_max_us, t.polarity)
        assert got == (1396, 1448, 1496, -1)
        # the actuator now treats 1448 as neutral (and re-armed with it)
        await until(pilot, lambda: app.status is not None and app.status.neutral_us == 1448)


@run_async
async def test_leaving_a_screen_while_running_returns_to_neutral(
    tmp_path: Path, link: FakeLink
) -> None:
    app = make_app(tmp_path / "cal.json", link, actuator_config=ENDLESS_HOLD)
    async with app.run_test(size=SIZE) as pilot:
        await goto(pilot, "2", ThrottleScreen)
        await pilot.press(*["left_square_bracket"] * 5)
        await _confirm(pilot, "w")
        await pilot.press("w")
        await until(pilot, lambda: link.last_command()[1] == 1396)
        await pilot.press("1")  # leave: the hold would otherwise go on
        await until(pilot, _sent(link, (CENTRE, NEUTRAL)))
        await goto(pilot, "2", ThrottleScreen)
        await pilot.press("w")  # wheels-up is asked again after leaving
        await until(pilot, lambda: isinstance(app.screen, ConfirmScreen))


@run_async
async def test_space_is_stop(tmp_path: Path, link: FakeLink) -> None:
    app = make_app(tmp_path / "cal.json", link, actuator_config=ENDLESS_HOLD)
    async with app.run_test(size=SIZE) as pilot:
        await goto(pilot, "2", ThrottleScreen)
        await pilot.press("left_square_bracket")
        await _confirm(pilot, "w")
        await pilot.press("w")
        await until(pilot, lambda: link.last_command()[1] == 1436)
        await pilot.press("space")  # the hold would otherwise go on
        await until(pilot, lambda: link.last_command()[1] == NEUTRAL)


@run_async
async def test_speed_test_run_and_distance(tmp_path: Path, link: FakeLink) -> None:
    app = make_app(tmp_path / "cal.json", link)
    async with app.run_test(size=SIZE) as pilot:
        await goto(pilot, "3", SpeedScreen)
        await until(pilot, lambda: app.status is not None)
        await pilot.press("left", "left", "left")  # 0.5 s runs
        await _confirm(pilot, "g")
        pulse = app.draft.throttle.pulse_us(0.40)
        assert pulse == 1392
        await until(pilot, lambda: (CENTRE, pulse) in link.commands())
        await until(pilot, lambda: isinstance(app.screen, NumberPrompt))
        assert link.last_command() == (CENTRE, NEUTRAL)  # the run ended by itself
        await pilot.press("1", ".", "2", "enter")
        await until(pilot, lambda: len(app.draft.speed.points) == 1)
        await pilot.press("up", "up")
        await _confirm(pilot, "g")
        await until(pilot, lambda: isinstance(app.screen, NumberPrompt))
        await pilot.press("2", ".", "0", "enter")
        await until(pilot, lambda: len(app.draft.speed.points) == 2)
        pts = app.draft.speed.points
        assert [(p.command, p.duration_s, p.distance_m) for p in pts] == [
            (0.4, 0.5, 1.2),
            (0.5, 0.5, 2.0),
        ]
        assert app.draft.speed.reference_battery_v == 7.6
        fit = app.draft.speed.fit()
        assert fit is not None and fit.speed_mps(0.45) == pytest.approx(3.2)
        # a non-monotonic run is refused with the reason
        await pilot.press("up")
        await _confirm(pilot, "g")
        await until(pilot, lambda: isinstance(app.screen, NumberPrompt))
        await pilot.press("0", ".", "5", "enter")
        await until(pilot, lambda: "not monotonic" in screen_text(app))
        assert len(app.draft.speed.points) == 2


async def _interrupt_a_run(pilot, app, link, interrupt, outcome: str) -> None:  # type: ignore[no-untyped-def]
    """Start the longest (6 s) speed run, `interrupt()` it once it has started, and wait
    for `outcome` on the screen. A test starved for the whole run (a loaded machine) sees
    the run end by itself first (the distance prompt): dismiss it and run again."""
    await pilot.press(*["right"] * 8)
    for _ in range(3):
        sent = len(link.commands())
        await _confirm(pilot, "g")
        await until(pilot, lambda n=sent: any(t != NEUTRAL for _, t in link.commands()[n:]))
        await interrupt()
        await until(
            pilot, lambda: outcome in screen_text(app) or isinstance(app.screen, NumberPrompt)
        )
        if not isinstance(app.screen, NumberPrompt):
            return
        await pilot.press("escape")


@run_async
async def test_speed_run_the_failsafe_interrupted_is_not_recorded(
    tmp_path: Path, link: FakeLink
) -> None:
    """The firmware fell back to neutral mid-run (this machine stalled): the car covered
    less ground than the command drives, so no distance is asked for."""
    app = make_app(tmp_path / "cal.json", link)
    async with app.run_test(size=SIZE) as pilot:
        await goto(pilot, "3", SpeedScreen)
        await until(pilot, lambda: app.status is not None)

        async def failsafe() -> None:
            link.failsafe_at_s = time.monotonic()

        await _interrupt_a_run(pilot, app, link, failsafe, "run interrupted")
        assert "run interrupted" in screen_text(app)
        assert not isinstance(app.screen, NumberPrompt)
        assert app.draft.speed.points == ()
        assert link.last_command()[1] == NEUTRAL


@run_async
async def test_stop_during_speed_run_records_nothing(tmp_path: Path, link: FakeLink) -> None:
    app = make_app(tmp_path / "cal.json", link)
    async with app.run_test(size=SIZE) as pilot:
        await goto(pilot, "3", SpeedScreen)
        await until(pilot, lambda: app.status is not None)
        await _interrupt_a_run(pilot, app, link, lambda: pilot.press("space"), "stopped early")
        assert link.last_command()[1] == NEUTRAL
        assert not isinstance(app.screen, NumberPrompt)
        assert app.draft.speed.points == ()


@run_async
async def test_link_loss_is_shown_and_blocks_motion(tmp_path: Path, link: FakeLink) -> None:
    app = make_app(tmp_path / "cal.json", link)
    async with app.run_test(size=SIZE) as pilot:
        await goto(pilot, "2", ThrottleScreen)
        await _confirm(pilot, "w")
        link.fail = True
        await until(pilot, lambda: app.status is not None and app.status.link_state == "lost")
        await until(pilot, lambda: "LINK LOST" in screen_text(app))
        await pilot.press("w")
        await until(pilot, lambda: "link is down" in screen_text(app))
        link.fail = False
        await until(pilot, lambda: app.status.link_state == "ok")
        assert link.last_command() == (CENTRE, NEUTRAL)


@run_async
async def test_battery_point_from_live_voltage(tmp_path: Path, link: FakeLink) -> None:
    link.battery_mv = 8120
    app = make_app(tmp_path / "cal.json", link)
    async with app.run_test(size=SIZE) as pilot:
        await goto(pilot, "4", BatteryScreen)
        await until(pilot, lambda: "8.12 V" in screen_text(app))
        await pilot.press("r")
        await until(pilot, lambda: isinstance(app.screen, NumberPrompt))
        await pilot.press("2", ".", "9", "enter")
        await until(pilot, lambda: len(app.draft.battery.points) == 1)
        assert [(p.battery_v, p.top_speed_mps) for p in app.draft.battery.points] == [(8.12, 2.9)]
        await pilot.press("r")
        await until(pilot, lambda: isinstance(app.screen, NumberPrompt))
        await pilot.press("9", "9", "enter")  # out of range: stays open, complains
        await until(pilot, lambda: "outside" in screen_text(app))
        assert isinstance(app.screen, NumberPrompt)
        await pilot.press("escape")
        await until(pilot, lambda: isinstance(app.screen, BatteryScreen))
        await pilot.press("d")
        await until(pilot, lambda: app.draft.battery.points == ())


@run_async
async def test_camera_settings_and_preview(tmp_path: Path) -> None:
    app = make_app(tmp_path / "cal.json")
    async with app.run_test(size=SIZE) as pilot:
        await goto(pilot, "5", CameraScreen)
        model = app.screen.query_one("#camera-model")
        await until(pilot, lambda: model.frame is not None)
        assert model.frame.shape == (120, 160)
        await pilot.press("o", "o", "h", "e", "e")
        await until(pilot, lambda: app.draft.camera.exposure_us == 16000)
        cam = app.draft.camera
        assert (cam.rotation_deg, cam.flip_horizontal, cam.exposure_us) == (180, True, 16000)
        assert app.camera.controls == {"exposure_us": 16000, "analogue_gain": None}
        await pilot.press("a")
        await until(pilot, lambda: app.draft.camera.exposure_us is None)
        await goto(pilot, "1", SteeringScreen)
        await pilot.pause(0.1)
        reads = app.camera.reads
        await pilot.pause(1.2)
        assert app.camera.reads <= reads + 1  # the preview stops off-screen


@run_async
async def test_review_save_and_backup(tmp_path: Path) -> None:
    path = tmp_path / "cal.json"
    app = make_app(path)
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, lambda: isinstance(app.screen, SteeringScreen))
        await pilot.press("right", "right", "c")
        await goto(pilot, "6", ReviewScreen)
        await until(pilot, lambda: "steering.mid_us" in screen_text(app))
        line = next(x for x in screen_text(app).splitlines() if "steering.mid_us" in x)
        assert line.split() == ["steering.mid_us", "1450", "1452"]
        await pilot.press("s")
        await until(pilot, lambda: path.exists())
        assert json.loads(path.read_text())["steering"]["mid_us"] == 1452
        assert app.unsaved_count() == 0
        await until(pilot, lambda: "no changes" in screen_text(app))
        await goto(pilot, "1", SteeringScreen)
        await pilot.press("right", "c")
        await goto(pilot, "6", ReviewScreen)
        await pilot.press("s")
        await until(pilot, lambda: path.with_name("cal.json.bak").exists())
    assert CalibrationStore(path).load().steering.mid_us == 1453
    assert CalibrationStore(path.with_name("cal.json.bak")).load().steering.mid_us == 1452


@run_async
async def test_quit_asks_with_unsaved_changes_and_leaves_car_disarmed(
    tmp_path: Path, link: FakeLink
) -> None:
    app = make_app(tmp_path / "cal.json", link)
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, lambda: isinstance(app.screen, SteeringScreen))
        await pilot.press("right", "c", "q")
        await until(pilot, lambda: isinstance(app.screen, ConfirmScreen))
        await pilot.press("n")
        await until(pilot, lambda: isinstance(app.screen, SteeringScreen))
        await pilot.press("q")
        await until(pilot, lambda: isinstance(app.screen, ConfirmScreen))
        await pilot.press("y")
        await pilot.pause(0.1)
    assert link.names()[-2:] == ["neutral", "disarm"]
    assert not (tmp_path / "cal.json").exists()
