"""`racer calibrate`'s non-interactive side: --show, DeepRacer import/export, refusals."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from calibration.deepracer import FACTORY_MOTOR_NS
from tools.cli import main


def _racer(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(["calibrate", *args])
    out = capsys.readouterr()
    return code, out.out, out.err


def test_show_without_a_saved_file_is_a_one_line_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = _racer(capsys, "--file", str(tmp_path / "c.json"), "--show")
    assert code == 2 and out == ""
    assert err.count("\n") == 1 and "no calibration saved yet" in err


def test_import_show_export_round_trip(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    dr = tmp_path / "deepracer.json"
    dr.write_text(
        json.dumps(
            {
                "version": "1.0",
                "Calibration": {
                    "Servo": {"min": 1_180_000, "mid": 1_470_000, "max": 1_760_000, "polarity": -1},
                    "Motor": FACTORY_MOTOR_NS,
                },
            }
        )
    )
    cal = tmp_path / "cfg" / "calibration.json"
    code, out, _ = _racer(capsys, "--file", str(cal), "--import-deepracer", str(dr))
    assert code == 0
    assert "left 1180 us  centre 1470 us  right 1760 us  polarity -1" in out
    code, out, _ = _racer(capsys, "--file", str(cal), "--show", "--json")
    data = json.loads(out)
    assert data["steering"]["mid_us"] == 1470 and data["throttle"]["max_us"] == 1604
    back = tmp_path / "back.json"
    code, out, _ = _racer(capsys, "--file", str(cal), "--export-deepracer", str(back))
    assert code == 0
    written = json.loads(back.read_text())
    assert list(written) == ["Calibration"] and written["Calibration"]["version"] == 1
    servo = written["Calibration"]["Servo"]
    assert servo == {"min": 1_180_000, "mid": 1_470_000, "max": 1_760_000, "polarity": -1}


def test_env_var_chooses_the_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "env.json"
    monkeypatch.setenv("OPENRACER_CALIBRATION", str(path))
    dr = tmp_path / "dr.json"
    dr.write_text(
        json.dumps(
            {
                "Calibration": {
                    "Servo": {"min": 1_200_000, "mid": 1_450_000, "max": 1_700_000, "polarity": 1},
                    "Motor": FACTORY_MOTOR_NS,
                }
            }
        )
    )
    assert _racer(capsys, "--import-deepracer", str(dr))[0] == 0
    assert path.exists()


@pytest.mark.parametrize(
    "args, message",
    [
        ([], "needs a terminal"),
        (["--preview-fps", "9"], "outside 0.2-5"),
        (["--import-deepracer", "/nonexistent/calibration.json"], "cannot read"),
    ],
)
def test_refusals(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], args: list[str], message: str
) -> None:
    code, _, err = _racer(capsys, "--file", str(tmp_path / "c.json"), *args)
    assert code == 2 and message in err
    assert not (tmp_path / "c.json").exists()
