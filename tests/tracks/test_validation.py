"""Bad track data of every kind: a typed one-line error naming the file, value and fix,
through the library, `tools.cli.main` and one real `racer` subprocess."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from tests.tracks.conftest import REPO, circle_track
from tools.cli import main as racer
from tracks.errors import TrackError, TrackValidationError
from tracks.track import Track, load_npy


def _good() -> np.ndarray:
    return circle_track(n=60).to_array()


def _figure_eight() -> np.ndarray:
    t = np.linspace(0, 2 * np.pi, 81)
    c = np.c_[2 * np.sin(t), np.sin(2 * t)]
    d = np.gradient(c, axis=0)
    n = np.c_[-d[:, 1], d[:, 0]] / np.linalg.norm(d, axis=1, keepdims=True)
    a = np.hstack([c, c + 0.15 * n, c - 0.15 * n])
    a[-1] = a[0]
    return a


def _bad_arrays() -> dict[str, tuple[object, str]]:
    g = _good()
    nan = g.copy()
    nan[7, 3] = np.nan
    inf = g.copy()
    inf[9, 0] = np.inf
    dup = np.insert(g, 5, g[5], axis=0)
    dup[6, 2:] += 0.01  # same centre point, different borders
    zero_w = g.copy()
    zero_w[11, 4:6] = zero_w[11, 2:4]
    cross_border = g.copy()
    cross_border[20, 2:4] = g[20, 0:2] * 1.3  # inner point pushed outside the outer border
    swapped = g.copy()
    swapped[:, 2:4], swapped[:, 4:6] = g[:, 4:6], g[:, 2:4].copy()
    open_nearly = g.copy()
    open_nearly[-1, 2:] += 0.001
    return {
        "shape": (g[:, :5], "shape is (61, 5)"),
        "dtype": (g.astype(np.float32), "dtype is float32"),
        "int": (np.zeros((10, 6), dtype=np.int64), "dtype is int64"),
        "nan": (nan, "non-finite"),
        "inf": (inf, "non-finite"),
        "few": (g[[0, 1, 2, 0]], "distinct centre-line point"),
        "one_row": (g[:1], "at least 4"),
        "duplicate": (dup, "repeat the centre point"),
        "self_intersecting": (_figure_eight(), "centre line crosses itself"),
        "width": (zero_w, "narrower than the car"),
        "cross_border": (cross_border, "crosses"),
        "swapped": (swapped, "swapped"),
        "nearly_closed": (open_nearly, "make the last row an exact copy"),
    }


BAD = _bad_arrays()


@pytest.mark.parametrize("kind", list(BAD))
def test_bad_arrays_raise_one_line_errors_naming_the_file(kind, tmp_path):
    array, needle = BAD[kind]
    path = tmp_path / f"bad_{kind}.npy"
    np.save(path, array)
    with pytest.raises(TrackValidationError) as exc:
        load_npy(path)
    msg = str(exc.value)
    assert needle in msg
    assert str(path) in msg and "\n" not in msg
    assert exc.value.exit_code == 2


@pytest.mark.parametrize("kind", list(BAD))
def test_bad_files_exit_2_through_the_cli(kind, tmp_path, capsys):
    path = tmp_path / f"bad_{kind}.npy"
    np.save(path, BAD[kind][0])
    for cmd in (["tracks", "info", str(path)], ["tracks", "show", str(path), "--png", "x.png"]):
        assert racer(cmd) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and err[0].startswith("racer tracks: error: ")
        assert str(path) in err[0]
    assert not (tmp_path / "x.png").exists()


def test_not_numpy_pickle_and_missing_files(tmp_path, capsys):
    junk = tmp_path / "junk.npy"
    junk.write_text("hello")
    pickled = tmp_path / "obj.npy"
    np.save(pickled, np.array([{"a": 1}], dtype=object), allow_pickle=True)
    for p in (junk, pickled, tmp_path / "missing.npy", tmp_path):
        with pytest.raises(TrackError):
            load_npy(p)
        assert racer(["tracks", "info", str(p)]) == 2
        assert str(p) in capsys.readouterr().err


def test_exact_repeated_rows_are_accepted_but_not_in_strict_tracks():
    g = _good()
    dup = np.insert(g, 5, g[5], axis=0)
    t = Track.from_array(dup, "dup")
    assert len(t.center) == 62
    with pytest.raises(TrackValidationError, match="same point"):
        Track.from_loop("strict", dup[:-1, 0:2], dup[:-1, 2:4], dup[:-1, 4:6])


def test_real_racer_subprocess_bad_file(tmp_path):
    racer_bin = REPO / ".venv" / "bin" / "racer"
    if not racer_bin.exists():
        pytest.skip("racer is not installed in .venv")
    path = tmp_path / "bad.npy"
    np.save(path, BAD["self_intersecting"][0])
    proc = subprocess.run(
        [str(racer_bin), "tracks", "info", str(path), "--json"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "centre line crosses itself" in lines[0] and str(path) in lines[0]
    assert "Traceback" not in proc.stderr and proc.stdout == ""


def test_python_m_subprocess_good_file_info(tmp_path):
    path = Path(tmp_path / "ring.npy")
    np.save(path, _good())
    proc = subprocess.run(
        [sys.executable, "-m", "tools.cli", "tracks", "info", str(path), "--json"],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=REPO,
    )
    assert proc.returncode == 0, proc.stderr
    assert '"closed": true' in proc.stdout
