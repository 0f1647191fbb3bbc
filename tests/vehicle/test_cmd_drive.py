"""`racer drive --headless` and `racer bench car` as a user runs them: real CLI, a replay
camera, the firmware on a simulated board behind a pty (in-process for drive, its own
process for the benchmark)."""

from __future__ import annotations

import contextlib
import io
import json
import sys

import cv2
import numpy as np
import pytest

from sim2real.hil.board import SimulatedFirmware
from tests.vehicle.tiny_models import write_model
from tools.cli import main as racer

pytest.importorskip("tensorflow")


def _run(argv):
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = racer(argv)
    return code, out.getvalue(), err.getvalue()


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    return write_model(tmp_path_factory.mktemp("m"), quant="int8")


def test_headless_drive_over_replay_frames(model, tmp_path, monkeypatch):
    monkeypatch.setenv("OPENRACER_CALIBRATION", str(tmp_path / "none.json"))
    rec = tmp_path / "rec"
    rec.mkdir()
    for i in range(12):
        cv2.imwrite(str(rec / f"{i:06d}.png"), np.full((480, 640, 3), i * 20, np.uint8))
    sim = SimulatedFirmware.start()
    try:
        code, out, err = _run(
            [
                "drive",
                "--headless",
                "--camera",
                f"replay:{rec}",
                "--port",
                sim.port,
                "--model",
                str(model[0]),
                "--max-speed",
                "0.3",
                "--json",
                "--log-dir",
                str(tmp_path / "logs"),
            ]
        )
    finally:
        sim.stop()
    assert code == 0, err
    summary = json.loads(out)
    assert summary["commands"] == 12 and summary["ok"]
    assert "end of the recording" in summary["stop_reason"]
    assert summary["loop_p50_ms"] > 0
    assert "factory pulse widths" in err  # no calibration saved: said so, not hidden
    logs = list((tmp_path / "logs").glob("drive-*/run.jsonl"))
    assert len(logs) == 1
    # `racer analyze` reads the run log: latency, stage timings, pulses
    carlog = pytest.importorskip("tools.analysis.carlog")
    log = carlog.load_car_log(logs[0].parent)
    s = carlog.series(log)
    assert log.header["calibration.throttle.mid_us"] == 1446  # the run header
    assert len(s.t_s) == 12  # 12 frames; the end of the recording is no frame and no event
    assert set(s.stages_ms) >= {"capture", "preprocess", "infer", "command"}
    assert s.latency_ms is not None and np.nanmax(s.latency_ms) > 0
    assert s.throttle_us is not None and np.nanmin(s.throttle_us) >= 1311


def test_bad_options_are_one_line_errors(model, tmp_path):
    code, _, err = _run(["drive", "--headless", "--port", "/dev/null", "--max-speed", "3"])
    assert code == 2 and "--max-speed 3.0 must be within 0-1" in err
    code, _, err = _run(["drive", "--headless", "--camera", "replay:x"])
    assert code == 2 and "--port is required" in err
    code, _, err = _run(
        ["drive", "--headless", "--port", "/dev/null", "--model", str(tmp_path / "nope.tflite")]
    )
    assert code == 2 and "model file not found" in err
    assert len(err.strip().splitlines()) == 1


def test_a_broken_calibration_refuses_to_start(model, tmp_path, monkeypatch):
    """A calibration file that exists but cannot be loaded stops the drive (exit 2); it
    never falls back to DeepRacer's factory pulse widths."""
    cal = tmp_path / "calibration.json"
    cal.write_text('{"schema_version": 1, "steering": ')
    monkeypatch.setenv("OPENRACER_CALIBRATION", str(cal))
    argv = ["drive", "--headless", "--port", "/dev/null", "--model", str(model[0])]
    code, _, err = _run([*argv, "--camera", "replay:x"])
    assert code == 2 and f"{cal}: not valid JSON" in err and "factory" not in err, err


def test_a_calibration_package_that_does_not_import_refuses_to_start(model, tmp_path, monkeypatch):
    monkeypatch.setenv("OPENRACER_CALIBRATION", str(tmp_path / "none.json"))
    monkeypatch.setitem(sys.modules, "calibration.store", None)  # a broken install
    argv = ["drive", "--headless", "--port", "/dev/null", "--model", str(model[0])]
    code, _, err = _run([*argv, "--camera", "replay:x"])
    assert code == 2 and "calibration package does not import" in err, err
    assert "refusing to drive with DeepRacer's factory pulse widths" in err


class _Terminal(io.StringIO):
    """stdout as a terminal: `racer drive` opens the live console."""

    def isatty(self):
        return True


def _forget_console(monkeypatch):
    for name in list(sys.modules):
        if name.startswith("vehicle.console."):
            monkeypatch.delitem(sys.modules, name)


def test_console_without_textual_is_a_clear_error_not_a_silent_headless_drive(monkeypatch):
    _forget_console(monkeypatch)
    for name in [m for m in sys.modules if m.split(".")[0] == "textual"] + ["textual"]:
        monkeypatch.setitem(sys.modules, name, None)  # as if not installed, even if imported
    err = io.StringIO()
    with contextlib.redirect_stdout(_Terminal()), contextlib.redirect_stderr(err):
        code = racer(["drive", "--port", "/dev/null"])
    assert code == 2
    assert "live console needs 'textual'" in err.getvalue() and "--headless" in err.getvalue()


def test_console_that_fails_to_import_is_a_real_error(monkeypatch):
    _forget_console(monkeypatch)
    monkeypatch.setitem(sys.modules, "vehicle.console.figures", None)  # a bug, not a package
    with contextlib.redirect_stdout(_Terminal()), pytest.raises(ModuleNotFoundError) as info:
        racer(["drive", "--port", "/dev/null"])
    assert info.value.name == "vehicle.console.figures"


def test_the_console_refuses_a_bad_model_or_calibration_before_it_opens(
    model, tmp_path, monkeypatch
):
    """In a terminal `racer drive` opens the console, whose drive runs in another process;
    a refusal must still be the one-line exit-2 error, not a line in the console's log."""
    import vehicle.console.app

    monkeypatch.setattr(vehicle.console.app, "run", lambda args: pytest.fail("the console opened"))
    monkeypatch.setenv("OPENRACER_CALIBRATION", str(tmp_path / "none.json"))

    def drive(*argv):
        err = io.StringIO()
        with contextlib.redirect_stdout(_Terminal()), contextlib.redirect_stderr(err):
            code = racer(["drive", "--port", "/dev/null", *argv])
        return code, err.getvalue()

    code, err = drive("--model", str(tmp_path / "nope.tflite"))
    assert code == 2 and "model file not found" in err, err
    assert len(err.strip().splitlines()) == 1
    cal = tmp_path / "calibration.json"
    cal.write_text('{"schema_version": 1, "steering": ')
    code, err = drive("--model", str(model[0]), "--calibration", str(cal))
    assert code == 2 and f"{cal}: not valid JSON" in err and "factory" not in err, err


def test_corrupt_model_refuses_to_start(tmp_path):
    bad = tmp_path / "model.tflite"
    bad.write_bytes(b"not a model")
    (tmp_path / "model_metadata.json").write_text('{"action_space": []}')
    code, _, err = _run(["drive", "--headless", "--port", "/dev/null", "--model", str(bad)])
    assert code == 2 and ("action_space" in err or "not a loadable" in err), err


def test_bench_car_json(model):
    code, out, err = _run(["bench", "car", "--model", str(model[0]), "--frames", "60", "--json"])
    assert code == 0, err
    r = json.loads(out)
    for key in (
        "loop_p50_ms",
        "loop_p99_ms",
        "infer_p50_ms",
        "reference_p50_ms",
        "protocol_encode_frames_per_s",
        "protocol_parse_frames_per_s",
    ):
        assert r[key] > 0, key
    assert r["frames"] == 60 and r["link_errors"] == 0
