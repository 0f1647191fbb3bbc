"""The calibration file: schema_version, migration, atomic saves with a backup."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest

from calibration.errors import CalibrationFileError
from calibration.model import (
    Calibration,
    SpeedMeasurements,
    SpeedPoint,
    SteeringCalibration,
    make_channel,
)
from calibration.store import SCHEMA_VERSION, CalibrationStore, default_path


def test_default_path_honours_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("OPENRACER_CALIBRATION", raising=False)
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "cfg"))
    assert default_path() == tmp_path / "cfg" / "openracer" / "calibration.json"
    monkeypatch.setenv("OPENRACER_CALIBRATION", str(tmp_path / "x.json"))
    assert default_path() == tmp_path / "x.json"


def test_save_load_round_trip_with_schema_version(tmp_path: Path) -> None:
    store = CalibrationStore(tmp_path / "sub" / "calibration.json")
    assert not store.exists()
    assert store.load_or_default() == Calibration()
    with pytest.raises(CalibrationFileError, match="no calibration saved yet"):
        store.load()
    cal = replace(Calibration(), speed=SpeedMeasurements((SpeedPoint(0.5, 2.0, 3.0),)))
    store.save(cal)
    data = json.loads(store.path.read_text())
    assert data["schema_version"] == SCHEMA_VERSION
    assert store.load() == cal
    assert not store.backup.exists()  # nothing to back up on the first save
    assert [p.name for p in store.path.parent.iterdir()] == ["calibration.json"]


def test_save_keeps_previous_file_as_backup(tmp_path: Path) -> None:
    store = CalibrationStore(tmp_path / "calibration.json")
    first = Calibration()
    second = replace(first, steering=SteeringCalibration(make_channel("s", 1200, 1470, 1700, 1)))
    store.save(first)
    store.save(second)
    assert store.load() == second
    assert CalibrationStore(store.backup).load() == first
    store.restore_backup()
    assert store.load() == first and CalibrationStore(store.backup).load() == second


def test_failed_save_leaves_old_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    store = CalibrationStore(tmp_path / "calibration.json")
    store.save(Calibration())
    before = store.path.read_bytes()

    def boom(*_a: object, **_k: object) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr("calibration.store.os.replace", boom)
    new = replace(
        Calibration(), steering=SteeringCalibration(make_channel("s", 1200, 1460, 1700, 1))
    )
    with pytest.raises(CalibrationFileError, match="No space left on device"):
        store.save(new)
    assert store.path.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["calibration.json"]  # no temp left


def test_migrates_a_deepracer_file_placed_at_the_path(tmp_path: Path) -> None:
    path = tmp_path / "calibration.json"
    path.write_text(
        json.dumps(
            {
                "version": "1.0",
                "Calibration": {
                    "Servo": {"min": 1_150_000, "mid": 1_460_000, "max": 1_760_000, "polarity": -1},
                    "Motor": {"min": 1_311_000, "mid": 1_446_000, "max": 1_603_500, "polarity": -1},
                },
            }
        )
    )
    cal = CalibrationStore(path).load()
    assert (cal.steering.min_us, cal.steering.mid_us, cal.steering.polarity) == (1150, 1460, -1)
    assert cal.throttle.max_us == 1604


@pytest.mark.parametrize(
    "content, match",
    [
        ("{not json", "not valid JSON"),
        ('{"schema_version": 99}', "newer openracer"),
        ('{"steering": {}}', "no 'schema_version'"),
        ('{"schema_version": "one"}', "not a positive integer"),
        ('{"schema_version": 1, "steering": {"min_us": 100}}', "outside 500-2500"),
        ('{"schema_version": 1, "steering": {"min_us": 1500}}', "min < mid < max"),
        ("[1, 2]", "expected a JSON object"),
    ],
)
def test_broken_files_raise_clear_errors(tmp_path: Path, content: str, match: str) -> None:
    path = tmp_path / "calibration.json"
    path.write_text(content)
    with pytest.raises(CalibrationFileError, match=match) as info:
        CalibrationStore(path).load()
    assert str(path) in str(info.value)
    assert info.value.exit_code == 2


def test_save_removes_temp_files_of_a_killed_save(tmp_path: Path) -> None:
    store = CalibrationStore(tmp_path / "calibration.json")
    (tmp_path / ".calibration.json.abc123.tmp").write_text('{"half": ')
    (tmp_path / ".other.json.x.tmp").write_text("not ours")
    store.save(Calibration())
    assert sorted(p.name for p in tmp_path.iterdir()) == [".other.json.x.tmp", "calibration.json"]
