"""The `racer` dispatcher: help, unknown commands, and one-line errors with exit code 2."""

from __future__ import annotations

import importlib
import re
import subprocess
import sys
import tomllib
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


def test_a_deepracer_file_with_keys_it_ignores_warns_in_one_line(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from vehicle.metadata import load_metadata

    path = Path(__file__).parents[1] / "vehicle" / "data" / "console_model_metadata.json"

    class Loads:
        @staticmethod
        def main(argv: list[str]) -> int:
            load_metadata(path)
            return 0

    monkeypatch.setitem(sys.modules, "tools.cmd_fake", Loads)
    monkeypatch.setitem(cli.COMMANDS, "fake", ("tools.cmd_fake", "test"))
    assert cli.main(["fake"]) == 0
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [
        f"racer fake: warning: {path}: ignoring preprocess_type, regional_parameters: key(s) "
        "DeepRacer's simulator does not read either; remove them to silence this warning"
    ]


def test_racer_console_script_runs() -> None:
    racer = Path(sys.executable).parent / "racer"
    if not racer.exists():
        pytest.skip("console script not installed (pip install -e .)")
    proc = subprocess.run([str(racer), "--help"], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0 and "usage: racer" in proc.stdout


def _fake_command(monkeypatch: pytest.MonkeyPatch, imports: str) -> None:
    """`racer fake`: a command whose main imports `imports`."""

    class Fake:
        @staticmethod
        def main(argv: list[str]) -> int:
            importlib.import_module(imports)
            return 0

    monkeypatch.setitem(sys.modules, "tools.cmd_fake", Fake)
    monkeypatch.setitem(cli.COMMANDS, "fake", ("tools.cmd_fake", "test"))


@pytest.mark.parametrize(
    ("module", "fix"),
    [
        ("albumentations", "pip install 'openracer[train]'"),
        ("tensorflow.lite", "pip install 'openracer[train]'"),
        ("ai_edge_litert.interpreter", "pip install 'openracer[car]'"),
        ("textual", "pip install --force-reinstall openracer"),
    ],
)
def test_a_missing_dependency_names_the_extra_that_installs_it(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], module: str, fix: str
) -> None:
    for name in {module.split(".")[0], module}:  # the import fails as if not installed,
        monkeypatch.setitem(sys.modules, name, None)  # even when another test imported it
    _fake_command(monkeypatch, module)
    assert cli.main(["fake"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and f"module {module.split('.')[0]!r}" in err[0] and fix in err[0]


@pytest.mark.parametrize("module", ["vehicle.no_such_module", "tools.cmd_trian", "tensorflw"])
def test_a_typo_or_an_openracer_module_is_a_real_error(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], module: str
) -> None:
    _fake_command(monkeypatch, module)
    with pytest.raises(ModuleNotFoundError) as info:
        cli.main(["fake"])
    assert info.value.name == module
    assert "pip install" not in capsys.readouterr().err


def test_third_party_table_matches_pyproject() -> None:
    """Every dependency pyproject.toml declares for running openracer (base, train, car,
    bench, ray, deepracer) has an entry, and every entry names a dependency of the extras it claims."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]

    def names(requirements: list[str]) -> set[str]:
        return {re.match(r"[A-Za-z0-9_.-]+", r).group(0).lower() for r in requirements}  # type: ignore[union-attr]

    declared = {"": names(project["dependencies"])}
    for extra in ("train", "car", "bench", "ray", "deepracer"):
        declared[extra] = names(project["optional-dependencies"][extra])
    for module, (dist, extras) in cli.THIRD_PARTY.items():
        for extra in extras or ("",):
            assert dist in declared[extra], f"{module}: {dist} is not in [{extra or 'base'}]"
    listed = {(dist, e) for dist, extras in cli.THIRD_PARTY.values() for e in extras or ("",)}
    for extra, dists in declared.items():
        for dist in dists:
            assert (dist, extra) in listed, f"pyproject's {dist} [{extra}] is not in THIRD_PARTY"
