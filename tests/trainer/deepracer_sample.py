"""The real DeepRacer model the import tests use: `tests/deepracer/model/sample-model/` of the
deepracer-utils source distribution (MIT-0; its LICENSE is kept beside it), at the version
the lock installs. Downloaded once with `pip download --no-binary :all: --no-deps` into
`build/cache/deepracer-utils/` (git-ignored) and reused from there; never committed.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import tarfile
import tempfile
from importlib.metadata import version
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
CACHE = ROOT / "build" / "cache" / "deepracer-utils"
MODEL = "tests/deepracer/model/sample-model"


def _pip() -> list[str]:
    """A pip to download with: the repo's uv bootstrap venv has one (the project venv,
    made by uv, has none), else the interpreter's own, else the one on PATH."""
    for python in (ROOT / "build" / "uv" / "bin" / "python", Path(sys.executable)):
        if (
            python.exists()
            and subprocess.run(
                [str(python), "-m", "pip", "--version"], capture_output=True
            ).returncode
            == 0
        ):
            return [str(python), "-m", "pip"]
    pip = shutil.which("pip3") or shutil.which("pip")
    if pip is None:
        pytest.fail("no pip to download the deepracer-utils sdist with (run tools/install.sh)")
    return [pip]


def sample_model() -> Path:
    """The unpacked `sample-model` folder (model/model_{15,30,48}.pb, model_metadata.json,
    pictures/), downloading and unpacking the sdist on first use."""
    ver = version("deepracer-utils")
    top = f"deepracer_utils-{ver}"
    folder = CACHE / top
    model = folder / MODEL
    if (model / "model" / "model_48.pb").is_file() and (folder / "LICENSE").is_file():
        return model
    CACHE.mkdir(parents=True, exist_ok=True)
    sdist = CACHE / f"{top}.tar.gz"
    if not sdist.is_file():
        with tempfile.TemporaryDirectory(dir=CACHE) as tmp:
            done = subprocess.run(
                [*_pip(), "download", "--no-binary", ":all:", "--no-deps", "-q",
                 f"deepracer-utils=={ver}", "-d", tmp],
                capture_output=True, text=True, timeout=600,
            )  # fmt: skip
            got = Path(tmp) / sdist.name
            if done.returncode != 0 or not got.is_file():
                pytest.fail(
                    f"cannot download the deepracer-utils {ver} sdist: {done.stderr[-500:]}"
                )
            got.replace(sdist)
    with tempfile.TemporaryDirectory(dir=CACHE) as tmp, tarfile.open(sdist) as tar:
        wanted = [
            m
            for m in tar.getmembers()
            if m.name == f"{top}/LICENSE" or m.name.startswith(f"{top}/{MODEL}/")
        ]
        tar.extractall(tmp, members=wanted, filter="data")
        shutil.rmtree(folder, ignore_errors=True)
        (Path(tmp) / top).replace(folder)
    return model
