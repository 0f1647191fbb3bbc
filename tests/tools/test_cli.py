"""The `racer` dispatcher: help, unknown commands, and one-line errors with exit code 2."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tools import cli

ROOT = Path(__file__).resolve().parents[2]


def test_help_lists_every_command(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["--help"]) == 0
    out = capsys.readouterr().out
    for name in cli.COMMANDS:
        assert f"  {name}" in out


def test_every_command_has_a_main_and_a_help_line() -> None:
    assert "bench" in cli.COMMANDS
    for name, (module, help_) in cli.COMMANDS.items():
        assert help_, f"tools/cmd_{name}.py needs a docstring whose first line says what it does"
        source = (ROOT / (module.replace(".", "/") + ".py")).read_text()
        assert "def main(" in source, f"{module} has no main(argv)"


def test_unknown_command_is_exit_2(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["fly"]) == 2
    err = capsys.readouterr().err
    assert "unknown command 'fly'" in err and "bench" in err


def test_user_error_is_one_line_exit_2(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from vehicle.errors import VehicleError

    class Boom:
        @staticmethod
        def main(argv: list[str]) -> int:
            raise VehicleError("thing.json: value 7 is out of range; use 1-5")

    monkeypatch.setitem(sys.modules, "tools.cmd_fake", Boom)
    monkeypatch.setitem(cli.COMMANDS, "fake", ("tools.cmd_fake", "test"))
    assert cli.main(["fake"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == ["racer fake: error: thing.json: value 7 is out of range; use 1-5"]


def test_racer_console_script_runs() -> None:
    racer = Path(sys.executable).parent / "racer"
    if not racer.exists():
        pytest.skip("console script not installed (pip install -e .)")
    proc = subprocess.run([str(racer), "--help"], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0 and "usage: racer" in proc.stdout
