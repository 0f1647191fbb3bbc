"""`racer calibrate --sim` in a real terminal (tmux): calibrate, save, check the file; and
a kill -9 in the middle of a save leaves the old or the new file intact, never a mix.

The app talks to the real firmware on the simulated board over a pty, exactly as on a
laptop trying `racer calibrate --sim`.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from calibration.store import CalibrationStore
from tests.tools.tui_terminal import ROOT, Terminal

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        subprocess.run(["which", "tmux"], capture_output=True).returncode != 0,
        reason="tmux not installed",
    ),
]

RACER = [sys.executable, "-m", "tools.cli", "calibrate", "--sim", "--camera", "none"]


@pytest.fixture
def term(request: pytest.FixtureRequest) -> Iterator[Terminal]:
    t = Terminal(request.node.name.replace("[", "-").replace("]", "")[:40])
    yield t
    t.close()


def _env(tmp_path: Path, **extra: str) -> dict[str, str]:
    return {"XDG_CONFIG_HOME": str(tmp_path / "cfg"), "PYTHONPATH": str(ROOT), **extra}


def _go(term: Terminal, tries: int = 3) -> None:
    """Press g until the run dialog shows. The app refuses while its link is down; on a
    heavily loaded machine the in-process simulated board can miss its deadline for a
    moment, which the app reports (and a retry a second later goes through)."""
    for _ in range(tries):
        term.wait_for("link ok")
        term.keys("g")
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            if "Car ON THE FLOOR" in term.screen():
                return
            time.sleep(0.1)
    raise AssertionError(f"the run dialog never showed:\n{term.screen()}")


def test_calibrate_in_a_terminal_and_save(term: Terminal, tmp_path: Path) -> None:
    path = tmp_path / "car" / "calibration.json"
    term.start([*RACER, "--file", str(path)], _env(tmp_path))
    term.wait_for("link ok")
    # steering: centre 1455 (the simulated servo's true centre), ends at +-200 us
    term.keys(*["Right"] * 5, "c")
    term.wait_for("centre         1455 us")
    term.wait_for("sim car: wheels  0.0 deg straight")  # what the simulated servo does
    term.keys(*["]"] * 20, "l", "Home", *["["] * 20, "r")
    term.wait_for("full right     1255 us")
    term.keys("a")
    term.wait_for("Wheel angle at full LEFT")
    term.text("23.5")
    term.keys("Enter")
    term.wait_for("Wheel angle at full RIGHT")
    term.text("23")
    term.keys("Enter")
    term.wait_for("angle 23.0 deg")
    # throttle: the wheels-up question, then a held run at 1416 us
    term.keys("2")
    term.wait_for("ESC. Left/Right")
    term.keys("w")
    term.wait_for("OFF THE GROUND")
    term.keys("y")
    term.wait_for("wheels off the ground confirmed")
    term.keys("[", "[", "[")
    for _ in range(6):
        term.keys("w", delay_s=0.04)
    term.wait_for("neutral", timeout_s=20)  # back to neutral after the deadman
    # speed: one 1 s run at command 0.5; the simulated board offers its odometer
    term.keys("3")
    term.wait_for("Speed test")
    term.keys("Up", "Up", "Left", "Left")
    term.wait_for("command 0.50")
    for _ in range(3):
        _go(term)
        term.keys("y")
        # A run the firmware's failsafe interrupted (this machine stalled for over
        # 100 ms), or one during which the link went quiet (the simulated board is a
        # thread of the racer process, stalled with it), is refused, as on the car; run
        # it again.
        screen = term.wait_for_any(
            "Distance covered at command 0.50", "run interrupted", "run stopped early"
        )
        if "Distance covered" in screen:
            break
    else:
        raise AssertionError(f"three speed runs interrupted in a row:\n{term.screen()}")
    term.keys("Enter")
    term.wait_for("recorded")
    # review and save
    term.keys("6")
    screen = term.wait_for("steering.mid_us")
    assert "1450" in screen and "1455" in screen
    term.keys("s")
    term.wait_for("saved calibration.json")
    term.keys("q")
    term.wait_dead()
    assert term.exit_status() == 0

    cal = CalibrationStore(path).load()
    s = cal.steering
    assert (s.min_us, s.mid_us, s.max_us, s.polarity) == (1255, 1455, 1655, 1)
    assert (s.left_deg, s.right_deg) == (23.5, 23.0)
    (run,) = cal.speed.points
    assert run.command == 0.5 and run.duration_s == 1.0 and run.distance_m > 0.1
    assert 7.0 < cal.speed.reference_battery_v < 8.5  # the simulated 2S battery
    # the command line reads back what the app saved
    out = subprocess.run(
        [sys.executable, "-m", "tools.cli", "calibrate", "--file", str(path), "--show", "--json"],
        capture_output=True,
        text=True,
        check=True,
        cwd=ROOT,
    )
    assert json.loads(out.stdout)["steering"]["mid_us"] == 1455


@pytest.mark.parametrize("when", ["during", "after"])
def test_kill_during_save_keeps_old_or_new_file(term: Terminal, tmp_path: Path, when: str) -> None:
    path = tmp_path / "calibration.json"
    store = CalibrationStore(path)
    store.save(store.load_or_default())
    old = path.read_bytes()
    # the store sleeps 3 s between writing the new file and swapping it in
    term.start([*RACER, "--file", str(path)], _env(tmp_path, OPENRACER_TEST_SAVE_PAUSE_S="3"))
    term.wait_for("link ok")
    term.keys("Right", "Right", "c", "6")
    term.wait_for("steering.mid_us")
    pid = term.pid()
    term.keys("s")
    if when == "during":
        # kill inside the store's 3 s pause: backup made, new file written, not swapped in
        deadline = time.monotonic() + 30
        backup = path.with_name("calibration.json.bak")
        while not (backup.exists() and [p for p in tmp_path.iterdir() if p.suffix == ".tmp"]):
            assert time.monotonic() < deadline, f"no temp file within 30 s:\n{term.screen()}"
            time.sleep(0.05)
    else:
        term.wait_for("saved calibration.json", timeout_s=30)
    os.kill(pid, signal.SIGKILL)
    term.wait_dead()
    data = path.read_bytes()
    cal = CalibrationStore(path).load()  # a complete, valid file either way
    if when == "during":
        assert data == old and cal.steering.mid_us == 1450
    else:
        assert cal.steering.mid_us == 1452
        assert path.with_name("calibration.json.bak").read_bytes() == old
    # no half-written file at the path, whatever temp file the kill left behind
    leftovers = [p.name for p in tmp_path.iterdir() if p.name.endswith(".tmp")]
    assert all(name.startswith(".calibration.json.") for name in leftovers)
    if when == "during":
        assert leftovers  # the new file was written but never swapped in
    # the next save clears what the kill left behind
    CalibrationStore(path).save(cal)
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]
