"""vehicle.runlog: the drive loop's run log folder, written on a background thread."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest

from vehicle.errors import RunLogError, VehicleError
from vehicle.runlog import SCHEMA_VERSION, RunLog, read_run


def test_header_names_the_schema_then_records_in_order(tmp_path: Path) -> None:
    log = RunLog(tmp_path / "run", {"model": "m", "rate_hz": 15.0, "schema_version": 99})
    for i in range(50):
        log.record({"frame": i, "t_s": 100.0 + i / 15, "loop_ms": np.float32(20.5)})
    log.close({"frames": 50, "stop_reason": "test"})
    lines = (tmp_path / "run" / "run.jsonl").read_text().splitlines()
    assert json.loads(lines[0]) == {
        "kind": "run",
        "schema_version": SCHEMA_VERSION,  # the writer's, never the caller's
        "model": "m",
        "rate_hz": 15.0,
    }
    recs = read_run(tmp_path / "run")
    assert [r["frame"] for r in recs[1:]] == list(range(50))
    assert recs[1]["loop_ms"] == 20.5  # numpy scalars are written as numbers
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert summary == {
        "frames": 50,
        "stop_reason": "test",
        "records_dropped": 0,
        "frames_saved": 0,
    }
    assert not list((tmp_path / "run").glob("*.tmp"))


def test_saves_every_nth_frame_with_its_index(tmp_path: Path) -> None:
    log = RunLog(tmp_path / "run", {}, frame_every=3)
    for i in range(10):
        rec: dict[str, object] = {"frame": i}
        if log.wants_frame(i):
            img = np.full((12, 16), i * 10, np.uint8)
            rec["frame_file"] = log.save_frame(i, 100.0 + i, img)
        log.record(rec)
    log.close({})
    saved = sorted(p.name for p in (tmp_path / "run" / "frames").glob("*.png"))
    assert saved == ["000000.png", "000003.png", "000006.png", "000009.png"]
    assert log.frames_saved == 4
    img = cv2.imread(str(tmp_path / "run" / "frames" / "000006.png"), cv2.IMREAD_UNCHANGED)
    assert img.shape == (12, 16) and int(img[0, 0]) == 60
    index = [
        json.loads(line)
        for line in (tmp_path / "run" / "frames" / "frames.jsonl").read_text().splitlines()
    ]
    assert index[1] == {"file": "000003.png", "t_s": 103.0, "frame": 3}
    assert [r.get("frame_file") for r in read_run(tmp_path / "run")[1:5]] == [
        "frames/000000.png",
        None,
        None,
        "frames/000003.png",
    ]


def test_no_frames_folder_unless_frames_are_saved(tmp_path: Path) -> None:
    log = RunLog(tmp_path / "run", {})
    assert not log.wants_frame(0)
    log.close()
    assert not (tmp_path / "run" / "frames").exists()
    assert not (tmp_path / "run" / "summary.json").exists()  # no summary given


def test_close_is_final_and_idempotent(tmp_path: Path) -> None:
    log = RunLog(tmp_path / "run", {})
    log.record({"frame": 1})
    log.close({"frames": 1})
    log.record({"frame": 2})  # after close: ignored, never raises on the drive loop
    log.close({"frames": 2})
    assert [r.get("frame") for r in read_run(tmp_path / "run")] == [None, 1]
    assert json.loads((tmp_path / "run" / "summary.json").read_text())["frames"] == 1


def test_unwritable_folder_is_a_run_log_error(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("")
    with pytest.raises(RunLogError, match="cannot write.*--log-dir") as info:
        RunLog(tmp_path / "file" / "run", {})
    assert isinstance(info.value, VehicleError) and info.value.exit_code == 2


def test_read_run_skips_a_torn_last_line_only(tmp_path: Path) -> None:
    path = tmp_path / "run.jsonl"
    path.write_text('{"kind": "run", "schema_version": 1}\n{"frame": 1}\n{"frame": 2, "t_')
    assert read_run(path) == [{"kind": "run", "schema_version": 1}, {"frame": 1}]
    path.write_text('{"kind": "run", "schema_version": 1}\nnot json\n{"frame": 2}\n')
    with pytest.raises(RunLogError, match=r"run.jsonl:2: not JSON"):
        read_run(path)
    with pytest.raises(RunLogError, match="cannot read"):
        read_run(tmp_path / "missing")
