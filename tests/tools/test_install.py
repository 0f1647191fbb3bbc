"""The lock and the install script: the requirement files were made from the present
pyproject.toml, pin every package with hashes and name no download address, and the
install script refuses what it cannot do with one line and exit code 2."""

from __future__ import annotations

import re
import shutil
import subprocess
import textwrap
from pathlib import Path

import pytest

from tools.lock_digest import lock_digest

ROOT = Path(__file__).resolve().parents[2]
PROFILES = ("all", "car")


@pytest.mark.parametrize("profile", PROFILES)
def test_the_lock_was_made_from_the_present_pyproject(profile: str) -> None:
    text = (ROOT / "tools" / f"requirements-{profile}.txt").read_text(encoding="utf-8")
    (recorded,) = re.findall(r"^# pyproject-digest: (\w+)$", text, re.M)
    assert recorded == lock_digest(ROOT / "pyproject.toml"), (
        "pyproject.toml's requirements changed since the lock was made: run `make lock`"
    )


@pytest.mark.parametrize("profile", PROFILES)
def test_every_package_is_pinned_with_hashes_and_no_address(profile: str) -> None:
    text = (ROOT / "tools" / f"requirements-{profile}.txt").read_text(encoding="utf-8")
    entries = re.split(r"\n(?=[a-z0-9])", text.split("\n", 2)[2].strip())
    assert len(entries) > (100 if profile == "all" else 15)
    for entry in entries:
        assert re.match(r"^[a-z0-9_.-]+==[\w.+!-]+ ", entry), entry
        assert "--hash=sha256:" in entry, entry
    assert "://" not in text
    names = {e.split("==")[0] for e in entries}
    if profile == "car":
        assert not names & {"tensorflow", "albumentations", "gymnasium", "keras"}
        assert {"ai-edge-litert", "numpy", "pyserial", "textual"} <= names
    else:
        assert {"tensorflow", "albumentations", "gymnasium", "mypy", "ai-edge-litert"} <= names


def _copy_install_kit(tmp_path: Path) -> Path:
    """tools/install.sh with what it reads, in a folder of its own."""
    kit = tmp_path / "kit"
    (kit / "tools").mkdir(parents=True)
    for name in ("install.sh", "lock_digest.py", *(f"requirements-{p}.txt" for p in PROFILES)):
        shutil.copy(ROOT / "tools" / name, kit / "tools" / name)
    shutil.copy(ROOT / "tools" / "requirements-uv.txt", kit / "tools")
    shutil.copy(ROOT / "pyproject.toml", kit / "pyproject.toml")
    return kit


def _install(
    kit: Path, *args: str, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess:
    import os

    return subprocess.run(
        ["bash", str(kit / "tools" / "install.sh"), *args],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "VENV": str(kit / ".venv"), **(env or {})},
    )


def test_a_python_older_than_3_11_is_refused_with_the_fix(tmp_path: Path) -> None:
    fake = tmp_path / "python3.10"
    fake.write_text(
        textwrap.dedent(
            """\
            #!/bin/sh
            case "$2" in *sys.exit*) exit 1 ;; *) echo 3.10 ;; esac
            """
        )
    )
    fake.chmod(0o755)
    proc = _install(_copy_install_kit(tmp_path), env={"PYTHON": str(fake)})
    assert proc.returncode == 2
    assert "is Python 3.10" in proc.stderr and "PYTHON=python3.11" in proc.stderr


def test_a_stale_lock_is_refused_before_anything_is_installed(tmp_path: Path) -> None:
    kit = _copy_install_kit(tmp_path)
    pyproject = kit / "pyproject.toml"
    pyproject.write_text(
        pyproject.read_text().replace('"pyserial>=3.5",', '"pyserial>=3.5",\n    "six",')
    )
    proc = _install(kit)
    assert proc.returncode == 2 and "make lock" in proc.stderr
    assert not (kit / ".venv").exists() and not (kit / "build").exists()


def test_an_unknown_profile_names_the_ones_there_are(tmp_path: Path) -> None:
    proc = _install(_copy_install_kit(tmp_path), "--profile", "gpu")
    assert proc.returncode == 2 and "the profiles are all" in proc.stderr
