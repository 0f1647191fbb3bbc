"""`racer drive --sim` in a terminal opens the live console over the hardware-in-the-loop
car: the real drive loop and link over a pty to the real firmware code on the simulated
board, the simulator rendering the camera and timing the laps. Driven as a person would:
Textual Pilot at 80x24, and the real command in tmux. The model is a small CNN cloned
from the simulator's pure-pursuit expert (tests/vehicle/expert_model.py)."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("tensorflow")
pytest.importorskip("sim2real.world")

from sim2real.hil.session import HILConfig  # noqa: E402
from tests.pilot import WAIT_S, run_async, until  # noqa: E402
from tests.screen_text import screen_text as text  # noqa: E402
from tests.tools.tui_terminal import ROOT, Terminal  # noqa: E402
from tests.vehicle.expert_model import build_expert_model  # noqa: E402
from tools.cmd_drive import sim_console_parts  # noqa: E402
from vehicle.console.app import DriveConsole  # noqa: E402
from vehicle.inference import Policy  # noqa: E402

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def expert(tmp_path_factory):
    tfl, meta, acc = build_expert_model(tmp_path_factory.mktemp("expert"))
    assert acc > 0.8
    return tfl, meta


@run_async
async def test_console_drives_the_simulated_car_and_space_stops_it(expert) -> None:
    policy = Policy.load(*expert)
    config = HILConfig(track="beginner_oval", laps=1000, fast=True)
    parts, session = sim_console_parts(config, policy, label="expert/model.tflite")
    app = DriveConsole(parts)
    async with app.run_test(size=(80, 24)) as pilot:
        await until(pilot, lambda: "model expert/model.tflite" in text(app))
        screen = text(app)
        assert "sim beginner_oval fast" in screen and "0.0 s  (0 laps)" in screen
        await pilot.press("enter")
        await until(pilot, lambda: session() is not None)
        hil = session()
        ctrl = lambda: hil.sim.controller  # noqa: E731
        await until(pilot, lambda: ctrl() is not None and ctrl().state == 1)  # ARMED
        await until(pilot, lambda: hil.sim.physics.speed_mps > 0.2)  # the car moves
        # figures from the running loop, the lap timer from the simulator
        await until(pilot, lambda: " Hz  frames" in text(app) and "up / armed" in text(app))
        await until(pilot, lambda: hil.laps().laps_completed >= 1, timeout_s=3 * WAIT_S)
        await until(pilot, lambda: re.search(r"last \d+\.\d  best \d+\.\d", text(app)))
        screen = text(app)
        assert "RUNNING" in screen and re.search(r"p50 \d+\.\d\d ms  p99 \d+\.\d\d ms", screen)
        assert re.search(r"battery\s+\d\.\d\d V", screen)
        assert "lap 1: " in screen  # the simulator's lap, in the log tail
        assert "\u2580" in screen  # the camera view shows the rendered frames
        await pilot.press("space")
        await until(pilot, lambda: app.drive is None)
        assert app.state == "E-STOP"
        await until(pilot, lambda: "STOP: neutral, disarmed" in text(app))
        await until(pilot, lambda: "stopped: emergency stop" in text(app))
    # the firmware ended disarmed with its throttle output at neutral
    fw = ctrl()
    assert fw.state == 0  # DISARMED
    throttle = [us for _, which, us in hil.sim.board.pulse_log if which == "throttle"]
    assert throttle and throttle[-1] == fw.t_mid
    assert hil.laps().laps_completed >= 1


@pytest.mark.skipif(
    subprocess.run(["which", "tmux"], capture_output=True).returncode != 0,
    reason="tmux not installed",
)
def test_racer_drive_sim_console_in_a_terminal(expert, tmp_path: Path) -> None:
    tfl, _ = expert
    term = Terminal("drivesim", 80, 24)
    try:
        env = {"XDG_CONFIG_HOME": str(tmp_path / "cfg"), "PYTHONPATH": str(ROOT)}
        argv = [sys.executable, "-m", "tools.cli", "drive", "--sim", "--track"]
        argv += ["beginner_oval", "--model", str(tfl), "--fast", "--laps", "1000"]
        argv += ["--store", str(tmp_path / "store")]
        term.start(argv, env)
        screen = term.wait_for("model ", timeout_s=WAIT_S)
        term.wait_for("(0 laps)", timeout_s=WAIT_S)
        screen = term.wait_for("space STOP", timeout_s=WAIT_S)
        assert "STOPPED" in screen and "100 %" in screen
        term.text("-")  # max speed -5 %
        term.wait_for("95 %", timeout_s=WAIT_S)
        term.keys("Enter")
        term.wait_for("RUNNING", timeout_s=WAIT_S)
        term.wait_for(" Hz  frames", timeout_s=WAIT_S)
        term.wait_for("up / armed", timeout_s=WAIT_S)
        screen = term.wait_for("best ", timeout_s=3 * WAIT_S)  # a lap of the simulator
        assert re.search(r"p50 \d+\.\d\d ms", screen)
        term.keys("Space")
        term.wait_for("STOP: neutral, disarmed", timeout_s=WAIT_S)
        screen = term.wait_for("stopped: emergency stop", timeout_s=WAIT_S)
        assert "E-STOP" in screen
        term.keys("q")
        term.wait_dead(timeout_s=WAIT_S)
        assert term.exit_status() == 0
    finally:
        term.close()
