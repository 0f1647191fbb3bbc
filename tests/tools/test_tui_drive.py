"""`racer drive` in a real terminal (tmux) opens the live console: the model from the
command line, Enter starts, space STOPs, q quits; the car is the real firmware on the
simulated board over a pty (opened by the `racer` process like /dev/serial0), the camera
a replay of recorded frames, the model a tiny real TFLite network."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import cv2
import numpy as np
import pytest

from sim2real.hil.board import SimulatedFirmware
from tests.tools.tui_terminal import ROOT, Terminal

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        subprocess.run(["which", "tmux"], capture_output=True).returncode != 0,
        reason="tmux not installed",
    ),
]


@pytest.fixture
def term() -> Iterator[Terminal]:
    t = Terminal("drive", 100, 30)
    yield t
    t.close()


@pytest.fixture
def sim() -> Iterator[SimulatedFirmware]:
    s = SimulatedFirmware.start(realtime_physics=True)
    yield s
    s.stop()


def _frames(directory: Path, n: int = 300) -> Path:
    directory.mkdir(parents=True)
    for i in range(n):
        img = np.full((120, 160, 3), 60, np.uint8)
        img[40:, 20 + i % 10 : 26 + i % 10] = 255
        img[40:, 134:140] = 255
        cv2.imwrite(str(directory / f"{i:05d}.png"), img)
    return directory


def test_drive_console_in_a_terminal(
    term: Terminal, sim: SimulatedFirmware, tmp_path: Path
) -> None:
    from tests.vehicle.tiny_models import write_model

    model, _ = write_model(tmp_path / "model")
    frames = _frames(tmp_path / "frames")
    env = {"XDG_CONFIG_HOME": str(tmp_path / "cfg"), "PYTHONPATH": str(ROOT)}
    argv = [sys.executable, "-m", "tools.cli", "drive", "--port", sim.port]
    argv += ["--camera", f"replay:{frames}", "--model", str(model), "--max-speed", "0.4"]
    term.start(argv, env)
    term.wait_for("model ", timeout_s=60)
    screen = term.wait_for("opens on start")
    assert "40 %" in screen and "space STOP" in screen
    term.keys("Enter")
    term.wait_for("RUNNING", timeout_s=30)
    screen = term.wait_for(" Hz  frames", timeout_s=30)
    deadline = time.monotonic() + 30
    while sim.controller.state != 1 and time.monotonic() < deadline:  # ARMED
        time.sleep(0.05)
    assert sim.controller.state == 1, f"firmware state {sim.controller.state}:\n{term.screen()}"
    term.keys("Space")
    term.wait_for("STOP: neutral, disarmed")
    term.wait_for("stopped: emergency stop", timeout_s=30)
    assert sim.controller.state == 0  # DISARMED
    term.keys("q")
    term.wait_dead()
    assert term.exit_status() == 0
