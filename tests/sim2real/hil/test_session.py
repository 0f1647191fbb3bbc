"""Hardware-in-the-loop: `racer drive --sim` drives laps with the real drive loop, link and
firmware code; faults injected on the simulated line. The model is a CNN cloned in-test
from the simulator's pure-pursuit expert (tests/vehicle/expert_model.py), standing in for
a PPO-trained model."""

from __future__ import annotations

import contextlib
import io
import json
import time

import pytest

pytest.importorskip("tensorflow")
pytest.importorskip("sim2real.world")

from sim2real.hil.board import SimulatedFirmware  # noqa: E402
from sim2real.hil.line import LineFaults  # noqa: E402
from sim2real.hil.session import HILConfig, hil_drive, run_hil  # noqa: E402
from tests.vehicle.expert_model import build_expert_model  # noqa: E402
from tools.cli import main as racer  # noqa: E402
from vehicle.inference import Policy  # noqa: E402

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def expert(tmp_path_factory):
    tfl, meta, acc = build_expert_model(tmp_path_factory.mktemp("expert"))
    assert acc > 0.8
    return tfl, meta


def test_racer_drive_sim_completes_laps(expert, tmp_path):
    tfl, _ = expert
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        code = racer(
            [
                "drive",
                "--sim",
                "--track",
                "beginner_oval",
                "--model",
                str(tfl),
                "--laps",
                "2",
                "--fast",
                "--json",
                "--log-dir",
                str(tmp_path / "log"),
            ]
        )
    report = json.loads(out.getvalue())
    assert code == 0, report
    for key in (
        "laps",
        "laps_completed",
        "lap_times_s",
        "off_track",
        "loop_p99_ms",
        "deadline_misses",
        "link_errors",
    ):
        assert key in report
    assert report["laps"] == 2 and report["laps_completed"] == 2
    assert len(report["lap_times_s"]) == 2 and all(5 < t < 60 for t in report["lap_times_s"])
    assert report["off_track"] == 0
    assert report["link_errors"] == 0
    # lock-step: the firmware's failsafe runs on simulated time, a stalled laptop is no fault
    assert report["firmware_failsafes"] == 0
    assert report["loop_p99_ms"] is not None
    assert (tmp_path / "log" / "run.jsonl").exists()
    # the simulated camera ending after the laps is a clean end: no fault in the log
    assert report["ok"] and report["stop_reason"].startswith("camera: simulation")
    records = [json.loads(line) for line in (tmp_path / "log" / "run.jsonl").open()]
    frames = [r for r in records if "frame" in r and "event" in r]
    assert len(frames) == report["frames"]
    assert [r["event"] for r in frames if r["event"] is not None] == []


def test_cable_cut_mid_lap_neutral_within_100ms_and_host_stops(expert, monkeypatch):
    # when each firmware loop iteration began (it asks `stop()` first, then reads its clock)
    polls: list[float] = []
    stopping = SimulatedFirmware._stopping

    def record(self: SimulatedFirmware) -> bool:
        polls.append(time.monotonic())
        return stopping(self)

    monkeypatch.setattr(SimulatedFirmware, "_stopping", record)
    config = HILConfig(track="beginner_oval", laps=1, fast=False, cut_cable_at_s=2.5)
    with hil_drive(config, Policy.load(*expert)) as session:
        summary = session.drive.run().summary()
        report = session.report(summary, session.failsafe_delay_ms())
        last_rx = session.sim.port_device.last_rx_s
    assert report["cable_cut"] and not report["ok"], json.dumps(report, default=str)
    assert report["stop_reason"].startswith("link lost"), report["stop_reason"]
    assert report["link_errors"] == 1
    assert report["laps_completed"] == 0
    ms = report["failsafe_after_last_frame_ms"]
    ctrl = session.sim.controller
    throttle = [us for _, which, us in session.sim.board.pulse_log if which == "throttle"]
    assert ctrl.state == 2 and throttle[-1] == ctrl.t_mid  # FAILSAFE, at neutral
    if ms is None:
        # the firmware had failed safe before the cut already (a loaded machine held the
        # drive loop back for over 100 ms just then): nothing left to time
        return
    assert ms > 0
    assert polls, "the firmware's loop iterations were not recorded; the check is void"
    # Within 100 ms by design (FAILSAFE_MARGIN_MS: at 98 ms after the last command, on
    # the firmware's clock; the last frame may be a later heartbeat, so less is normal).
    # Here the firmware is a thread of this process and a loaded machine may not run it
    # for a while, so the wall-clock delay proves nothing; what the firmware controls is
    # that it acts in the first loop iteration that begins 100 ms (98 + the 1 ms tick's
    # rounding, twice) after the last byte it received, not in a later one.
    neutral_s = last_rx + ms / 1000
    due = [p for p in polls if last_rx + 0.100 <= p < neutral_s]
    assert len(due) <= 1, (
        f"neutral {ms} ms after the last frame: {len(due)} firmware iterations began after "
        "the failsafe was due and before it acted"
    )


def test_one_percent_line_noise_laps_still_complete(expert):
    faults = LineFaults(corrupt_prob=0.005, drop_prob=0.005, seed=3, record=True)
    report = run_hil(
        HILConfig(track="beginner_oval", laps=1, fast=True),
        Policy.load(*expert),
        line_faults=faults,
    )
    assert report["laps_completed"] == 1 and report["link_errors"] == 0, json.dumps(
        report, default=str
    )
    sent = set(bytes(faults.clean).split(b"\x00"))
    chunks = [c for c in bytes(faults.delivered).split(b"\x00")[:-1] if c]
    expected_bad = sum(1 for c in chunks if c not in sent)
    assert expected_bad > 0
    assert report["firmware_frames_bad"] == expected_bad


def test_real_time_mode_is_paced_by_the_wall_clock(expert):
    """Real time: the world steps once per control period of wall time and never runs
    ahead of it. Whether this machine keeps up with 15 Hz is a speed question for the
    benchmarks (`racer bench car`), not for a unit test: a loaded machine steps later,
    never sooner."""
    steps: list[tuple[float, float]] = []  # (wall clock, simulated time) of each step

    def on_event(kind: str, info: dict) -> None:
        if kind == "progress":
            steps.append((time.monotonic(), info["sim_time_s"]))

    report = run_hil(
        HILConfig(track="beginner_oval", laps=1, fast=False, lap_time_limit_s=2.0),
        Policy.load(*expert),
        on_event=on_event,
    )
    dt_s = 1 / 15
    assert report["frames"] >= 1 and len(steps) >= 2
    assert len(steps) == round(report["sim_time_s"] / dt_s)
    assert all(b[1] - a[1] == pytest.approx(dt_s) for a, b in zip(steps, steps[1:], strict=False))
    # The simulation thread sleeps until each step is due and, when late, starts the next
    # period from now instead of catching up, so step i begins at least i - 1 periods
    # after step 0 was reported, however the machine schedules it.
    t0 = steps[0][0]
    early = [
        (i, round((t - t0) * 1000, 1))
        for i, (t, _) in enumerate(steps)
        if i and t - t0 < (i - 1) * dt_s - 0.001
    ]
    assert not early, f"steps ahead of the wall clock (step, ms after step 0): {early[:5]}"
