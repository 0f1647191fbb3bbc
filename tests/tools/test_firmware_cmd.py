"""`racer firmware build|flash`: a real mpy-cross build; flashing up to the mpremote call
(a fake mpremote on PATH records its argv: there is no board here)."""

from __future__ import annotations

import json
import os
import stat
import sys

import pytest

from tools.cli import main as racer
from tools.firmware import FIRMWARE_DIR, mpremote_argv, protocol_version

FAKE_MPREMOTE = """#!{python}
import json, os, sys
with open(os.environ["FAKE_MPREMOTE_LOG"], "a") as fh:
    fh.write(json.dumps(sys.argv[1:]) + "\\n")
if os.environ.get("FAKE_MPREMOTE_FAIL"):
    print("mpremote: failed to access /dev/ttyFAKE (it may be in use by another program)",
          file=sys.stderr)
    sys.exit(1)
"""


@pytest.fixture
def firmware_src(tmp_path):
    src = tmp_path / "fw"
    src.mkdir()
    (src / "__init__.py").write_text("")
    (src / "protocol.py").write_text(
        "from micropython import const\n_PROTOCOL_VERSION = const(4)\n\n"
        "def hello():\n    return b'openracer'\n"
    )
    (src / "motors.py").write_text("class Motors:\n    def stop(self):\n        return 1500\n")
    (src / "main.py").write_text("import protocol\nimport motors\nprint(protocol.hello())\n")
    return src


@pytest.fixture
def fake_mpremote(tmp_path, monkeypatch):
    bindir = tmp_path / "bin"
    bindir.mkdir()
    tool = bindir / "mpremote"
    tool.write_text(FAKE_MPREMOTE.format(python=sys.executable))
    tool.chmod(tool.stat().st_mode | stat.S_IEXEC)
    log = tmp_path / "mpremote.log"
    monkeypatch.setenv("PATH", f"{bindir}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.setenv("FAKE_MPREMOTE_LOG", str(log))
    return log


def test_build_compiles_modules_to_real_mpy(firmware_src, tmp_path, capsys):
    out = tmp_path / "build"
    assert (
        racer(["firmware", "build", "--source", str(firmware_src), "--out", str(out), "--json"])
        == 0
    )
    report = json.loads(capsys.readouterr().out)["build"]
    assert report["compiled"] == ["motors", "protocol"]
    assert report["files"] == ["motors.mpy", "protocol.mpy", "main.py"]
    assert report["protocol_version"] == 4 and "mpy" in report["mpy_cross_version"]
    for name in ("motors.mpy", "protocol.mpy"):
        header = (out / name).read_bytes()[:2]
        assert header[0] == ord("M") and header[1] == 6  # .mpy magic, format version 6
    assert (out / "main.py").read_text() == (firmware_src / "main.py").read_text()
    assert not (out / "__init__.mpy").exists()
    manifest = json.loads((out / "firmware.json").read_text())
    assert set(manifest["files"]) == {"motors.mpy", "protocol.mpy", "main.py"}


def test_syntax_error_fails_in_one_line_and_keeps_the_old_build(firmware_src, tmp_path, capsys):
    out = tmp_path / "build"
    assert racer(["firmware", "build", "--source", str(firmware_src), "--out", str(out)]) == 0
    before = sorted(p.name for p in out.iterdir())
    (firmware_src / "broken.py").write_text("def f(:\n    pass\n")
    capsys.readouterr()
    assert racer(["firmware", "build", "--source", str(firmware_src), "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "broken.py" in err[0] and "SyntaxError" in err[0]
    assert sorted(p.name for p in out.iterdir()) == before


def test_the_real_firmware_builds(tmp_path):
    modules = [p for p in FIRMWARE_DIR.glob("*.py") if p.name != "__init__.py"]
    if not modules:
        pytest.skip("vehicle/firmware has no modules yet")
    out = tmp_path / "build"
    assert racer(["firmware", "build", "--out", str(out)]) == 0
    assert (out / "protocol.mpy").is_file()
    assert protocol_version(FIRMWARE_DIR) is not None


def test_flash_calls_mpremote_with_cleanup_copy_and_reset(
    firmware_src, tmp_path, fake_mpremote, capsys
):
    out = tmp_path / "build"
    code = racer(
        [
            "firmware",
            "flash",
            "--port",
            "/dev/ttyFAKE",
            "--source",
            str(firmware_src),
            "--out",
            str(out),
            "--no-check",
        ]
    )
    assert code == 0, capsys.readouterr().err
    calls = [json.loads(line) for line in fake_mpremote.read_text().splitlines()]
    assert len(calls) == 1
    argv = calls[0]
    assert argv[:3] == ["connect", "/dev/ttyFAKE", "exec"]
    assert "protocol.py" in argv[3] and "motors.py" in argv[3]
    cp = argv.index("cp")
    assert argv[cp - 1] == "fs"
    copied = argv[cp + 1 : argv.index(":")]
    assert copied == [str(out.resolve() / f) for f in ("motors.mpy", "protocol.mpy", "main.py")]
    assert argv[-3:] == [":", "+", "reset"]
    assert "copied 3 files" in capsys.readouterr().out


def test_cleanup_code_removes_stale_py_twins(tmp_path, monkeypatch):
    """The code mpremote execs on the board, run here in a folder standing in for the
    board's filesystem (it is plain Python that MicroPython runs as well)."""
    argv = mpremote_argv("mpremote", "/dev/ttyACM0", tmp_path, ["a.mpy", "main.py"], ["a"])
    board = tmp_path / "board"
    board.mkdir()
    (board / "a.py").write_text("stale")
    (board / "main.py").write_text("keep")
    monkeypatch.chdir(board)
    exec(argv[argv.index("exec") + 1], {})
    assert sorted(p.name for p in board.iterdir()) == ["main.py"]
    exec(argv[argv.index("exec") + 1], {})  # nothing to remove: still fine


def test_mpremote_failure_is_one_line_exit_2(
    firmware_src, tmp_path, fake_mpremote, monkeypatch, capsys
):
    monkeypatch.setenv("FAKE_MPREMOTE_FAIL", "1")
    code = racer(
        [
            "firmware",
            "flash",
            "--port",
            "/dev/ttyFAKE",
            "--source",
            str(firmware_src),
            "--out",
            str(tmp_path / "build"),
            "--no-check",
        ]
    )
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1
    assert "mpremote failed (exit 1)" in err[0] and "in use by another program" in err[0]


def test_flash_refuses_an_unlikely_port(firmware_src, tmp_path, fake_mpremote, capsys):
    code = racer(
        [
            "firmware",
            "flash",
            "--port",
            "/dev/tty; rm -rf ~",
            "--source",
            str(firmware_src),
            "--out",
            str(tmp_path / "build"),
            "--no-check",
        ]
    )
    assert code == 2 and "does not look like a serial port" in capsys.readouterr().err
    assert not fake_mpremote.exists()


def test_flash_then_protocol_check_against_the_firmware_on_a_pty(tmp_path, fake_mpremote, capsys):
    """The whole flash of the real firmware: real build, mpremote call (fake: no board),
    then the version check over a real pty against the real firmware code running on the
    simulated board (sim2real.hil.board)."""
    from sim2real.hil.board import SimulatedFirmware

    out = tmp_path / "build"
    with SimulatedFirmware.start() as sim:
        code = racer(
            ["firmware", "flash", "--port", sim.port, "--out", str(out), "--json", "--wait", "5"]
        )
        captured = capsys.readouterr()
    assert code == 0, captured.err
    report = json.loads(captured.out)
    assert report["hello"]["protocol"] == protocol_version(FIRMWARE_DIR)
    assert report["flashed"]["port"] == sim.port
    argv = json.loads(fake_mpremote.read_text().splitlines()[0])
    assert argv[:2] == ["connect", sim.port] and argv[-1] == "reset"
    assert str(out.resolve() / "protocol.mpy") in argv


def test_protocol_mismatch_after_flash_is_refused(tmp_path, fake_mpremote, capsys):
    """A build declaring another protocol version than the board answers."""
    from sim2real.hil.board import SimulatedFirmware

    src = tmp_path / "fw"
    src.mkdir()
    real = (FIRMWARE_DIR / "protocol.py").read_text()
    version = protocol_version(FIRMWARE_DIR)
    (src / "protocol.py").write_text(
        real.replace(
            f"PROTOCOL_VERSION = const({version})", f"PROTOCOL_VERSION = const({version + 1})"
        )
    )
    assert protocol_version(src) == version + 1
    with SimulatedFirmware.start() as sim:
        code = racer(
            [
                "firmware",
                "flash",
                "--port",
                sim.port,
                "--source",
                str(src),
                "--out",
                str(tmp_path / "build"),
                "--wait",
                "3",
            ]
        )
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1
    assert f"answers protocol {version}" in err[0] and f"protocol {version + 1}" in err[0]


def test_no_board_answering_is_a_clear_error(tmp_path, firmware_src, fake_mpremote, capsys):
    import os as _os
    import pty

    master, slave = pty.openpty()
    try:
        code = racer(
            [
                "firmware",
                "flash",
                "--port",
                _os.ttyname(slave),
                "--source",
                str(firmware_src),
                "--out",
                str(tmp_path / "build"),
                "--wait",
                "1.5",
            ]
        )
    finally:
        _os.close(master)
        _os.close(slave)
    err = capsys.readouterr().err
    assert code == 2 and "did not answer the version check" in err
