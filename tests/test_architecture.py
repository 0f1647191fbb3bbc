"""The import rule of ARCHITECTURE.md, checked on every module's imports, and the car side
importing with the training stack made unimportable."""

from __future__ import annotations

import ast
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("tracks", "sim2real", "trainer", "vehicle", "calibration", "tools")
TRAINING_STACK = ("tensorflow", "keras", "albumentations", "gymnasium")

# Which openracer packages each package may import (at any level, lazily or not).
ALLOWED = {
    "tracks": set(),
    "sim2real": {"tracks", "vehicle"},
    "trainer": {"sim2real", "tracks", "vehicle"},
    "vehicle": set(),
    "calibration": {"vehicle"},
    "tools": set(PACKAGES),
}


def _imports(path: Path) -> list[tuple[int, str, bool]]:
    """(line, top-level module, at module level?) for every import in a file."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    module_level = {id(node) for node in tree.body}
    # imports inside `if TYPE_CHECKING:` at module level count as lazy (never executed)
    for node in tree.body:
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            module_level.discard(id(node))
    out = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names = [node.module]
        else:
            continue
        for name in names:
            out.append((node.lineno, name.split(".")[0], id(node) in module_level))
    return out


def _modules(package: str) -> list[Path]:
    return sorted((ROOT / package).rglob("*.py"))


@pytest.mark.parametrize("package", PACKAGES)
def test_one_way_imports(package: str) -> None:
    bad = []
    for path in _modules(package):
        for line, name, _ in _imports(path):
            if name in PACKAGES and name != package and name not in ALLOWED[package]:
                bad.append(f"{path.relative_to(ROOT)}:{line} imports {name}")
    assert not bad, "imports against the rule in ARCHITECTURE.md:\n" + "\n".join(bad)


@pytest.mark.parametrize("package", ["vehicle", "calibration", "tracks"])
def test_car_side_has_no_module_level_training_stack(package: str) -> None:
    bad = []
    for path in _modules(package):
        for line, name, top in _imports(path):
            if top and name in TRAINING_STACK:
                bad.append(f"{path.relative_to(ROOT)}:{line} imports {name} at module level")
    assert not bad, "\n".join(bad)


def test_firmware_imports_nothing_from_the_host() -> None:
    host_only = set(PACKAGES) | {"numpy", "serial", "typing", "dataclasses", "enum", "abc"}
    host_only |= {"logging", "pathlib"}
    bad = []
    for path in sorted((ROOT / "vehicle" / "firmware").glob("*.py")):
        for line, name, top in _imports(path):
            if top and name in host_only:
                bad.append(f"{path.relative_to(ROOT)}:{line} imports {name}")
    assert not bad, "firmware must run under MicroPython:\n" + "\n".join(bad)


BLOCKER = textwrap.dedent(
    """
    import importlib.abc, sys
    BLOCKED = {blocked!r}
    class Block(importlib.abc.MetaPathFinder):
        def find_spec(self, name, path=None, target=None):
            if name.split(".")[0] in BLOCKED:
                raise ImportError(f"{{name}} is blocked: the car side must not need it")
            return None
    sys.meta_path.insert(0, Block())
    """
)


def _run_blocked(code: str) -> subprocess.CompletedProcess[str]:
    script = BLOCKER.format(blocked=TRAINING_STACK + ("tracks", "sim2real", "trainer")) + code
    return subprocess.run(
        [sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=120
    )


def test_car_side_imports_without_training_stack() -> None:
    mods = sorted(
        ".".join(p.relative_to(ROOT).with_suffix("").parts)
        for pkg in ("vehicle", "calibration")
        for p in _modules(pkg)
        if "firmware" not in p.parts or p.name == "protocol.py"
    )
    mods = [m.removesuffix(".__init__") for m in mods]
    code = "import importlib\n" + "".join(f"importlib.import_module({m!r})\n" for m in mods)
    code += f"print('ok', {len(mods)})\n"
    proc = _run_blocked(code)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("ok")


@pytest.mark.parametrize("argv", [["--help"], ["drive", "--help"], ["calibrate", "--help"]])
def test_racer_starts_without_training_stack(argv: list[str]) -> None:
    if argv[0] in ("drive", "calibrate") and not (ROOT / "tools" / f"cmd_{argv[0]}.py").exists():
        pytest.skip(f"racer {argv[0]} not written yet")
    proc = _run_blocked(f"import sys\nfrom tools.cli import main\nsys.exit(main({argv!r}))\n")
    assert proc.returncode == 0, proc.stderr
    assert "usage" in proc.stdout.lower()


def test_simulator_processes_need_no_tensorflow() -> None:
    """The actor and the worker loop run in the simulator processes: NumPy only."""
    script = BLOCKER.format(blocked=("tensorflow", "keras")) + (
        "import trainer.actor, trainer.workers\nprint('ok')\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("ok")
