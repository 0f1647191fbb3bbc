"""Car run logs: latency, deadline misses, link errors, battery, controls, MP4 replay."""

from __future__ import annotations

import json

import cv2
import numpy as np
import pytest

from tools.analysis.carlog import analyze_car_log, is_car_log, load_car_log, series
from tools.analysis.errors import CarLogError
from tools.cli import main as racer
from vehicle.runlog import SCHEMA_VERSION


def write_car_log(root, n=90, rate_hz=15.0, frames_every=1, seed=0, torn=False):
    """A run log as the drive loop writes it: a header record, then one record per frame."""
    rng = np.random.default_rng(seed)
    root.mkdir(parents=True, exist_ok=True)
    (root / "frames").mkdir(exist_ok=True)
    lines = [json.dumps({"model": "m.tflite", "rate_hz": rate_hz, "started": "2026-11-22T03:00Z"})]
    link_errors = 0
    for i in range(n):
        capture, infer, send = 4 + rng.random(), 20 + 8 * rng.random(), 1.0
        if i in (30, 31, 60):
            infer = 80.0  # three slow frames: deadline misses at 15 Hz (66.7 ms)
        if i == 45:
            link_errors += 1
        steer = float(np.round(15 * np.sin(i / 10.0)))
        rec = {
            "frame": i,
            "t_ns": int(1_000_000_000 + i * 1e9 / rate_hz),
            "action": {"index": i % 10, "steer_deg": steer, "speed_mps": 0.6},
            "pulses": {"steering_us": 1500 + 10 * steer, "throttle_us": 1430},
            "stages": {"capture": capture, "infer": infer, "send": send},
            "telemetry": {"battery_v": 7.9 - 0.002 * i, "link_errors": link_errors},
        }
        lines.append(json.dumps(rec))
        if i % frames_every == 0:
            img = np.full((120, 160), 40 + i % 200, np.uint8)
            cv2.putText(img, str(i), (50, 70), cv2.FONT_HERSHEY_SIMPLEX, 1, 255, 2)
            cv2.imwrite(str(root / "frames" / f"{i:06d}.png"), img)
    text = "\n".join(lines) + "\n"
    if torn:
        text += '{"frame": 9999, "t_ns": 12'
    (root / "run.jsonl").write_text(text)
    return root


def test_series_and_summary(tmp_path):
    log = load_car_log(write_car_log(tmp_path / "run"))
    assert log.schema_version is None  # written before run logs had a schema: legacy
    assert log.header["rate_hz"] == 15.0 and len(log.records) == 90
    s = series(log)
    assert s.period_ms == pytest.approx(1000 / 15)
    assert set(s.stages_ms) == {"capture", "infer", "send"}
    assert np.allclose(s.latency_ms, sum(s.stages_ms.values()))
    assert s.deadline_miss.sum() == 3
    assert s.t_s[-1] == pytest.approx(89 / 15)
    assert s.steer_us is not None and s.battery_v[0] == pytest.approx(7.9)


def test_analyze_car_log_report_and_replay(tmp_path, capsys):
    run = write_car_log(tmp_path / "run")
    assert is_car_log(run)
    out = tmp_path / "report"
    assert racer(["analyze", str(run), "--out", str(out), "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["frames"] == 90 and summary["deadline_misses"] == 3
    assert summary["link_errors"] == 1
    assert summary["battery_end_v"] == pytest.approx(7.9 - 0.002 * 89, abs=1e-3)
    assert 25 < summary["latency_p50_ms"] < 35 and summary["latency_max_ms"] > 80
    assert summary["loop_rate_hz"] == pytest.approx(15.0, rel=1e-3)
    for png in ("latency_hist.png", "latency_time.png", "battery_link.png", "controls.png"):
        assert (out / png).stat().st_size > 5000
    cap = cv2.VideoCapture(str(out / "replay.mp4"))
    count = int(cap.get(cv2.CAP_PROP_FRAME_COUNT))
    ok, frame = cap.read()
    cap.release()
    assert ok and count == 90 and summary["replay_frames"] == 90
    assert frame.shape[1] == 640  # frames enlarged 4x with the action band below
    assert 'src="replay.mp4"' in (out / "report.html").read_text()


def test_torn_last_line_is_skipped_but_garbage_is_loud(tmp_path):
    log = load_car_log(write_car_log(tmp_path / "a", n=20, torn=True))
    assert len(log.records) == 20
    bad = tmp_path / "b"
    bad.mkdir()
    (bad / "run.jsonl").write_text('{"frame": 1, "t_s": 0}\nnot json\n{"frame": 2, "t_s": 1}\n')
    with pytest.raises(CarLogError, match="not JSON"):
        load_car_log(bad)
    with pytest.raises(CarLogError, match="no .jsonl"):
        load_car_log(tmp_path / "nothing")


def test_a_log_written_by_the_drive_loops_run_log_writer(tmp_path):
    """The car's own writer (vehicle.runlog.RunLog) produces what the analysis reads."""
    from vehicle.runlog import RunLog

    log = RunLog(tmp_path / "drive", {"model": "m", "rate_hz": 15.0}, frame_every=5)
    for i in range(40):
        miss = i == 20
        rec = {
            "frame": i,
            "t_s": 1000.0 + i / 15.0,
            "loop_ms": 90.0 if miss else 30.0 + (i % 3),
            "stages": {"capture": 5.0, "preprocess": 1.0, "infer": 20.0, "command": 1.0},
            "steer_deg": 10.0,
            "speed_mps": 0.5,
            "steer_us": 1550,
            "throttle_us": 1420,
            "deadline_miss": miss,
            "link_errors": 0 if i < 30 else 2,
            "link": "ok",
            "event": None,
            "battery_v": 7.8,
            "telemetry": {"battery_v": 7.8, "state": "armed"},
        }
        if log.wants_frame(i):
            rec["frame_file"] = log.save_frame(i, rec["t_s"], np.full((120, 160), i, np.uint8))
        log.record(rec)
    log.close({"frames": 40, "stop_reason": "test"})
    car = load_car_log(tmp_path / "drive")
    assert car.schema_version == car.header["schema_version"] == SCHEMA_VERSION == 1
    assert car.header["model"] == "m" and car.end["stop_reason"] == "test"
    with pytest.raises(CarLogError, match="overwrite"):
        analyze_car_log(car, tmp_path / "drive")
    assert len(car.records) == 40
    s = series(car)
    assert s.period_ms == pytest.approx(1000 / 15) and int(s.deadline_miss.sum()) == 1
    summary = analyze_car_log(car, tmp_path / "out")
    assert summary["link_errors"] == 2 and summary["replay_frames"] == 8
    assert summary["latency_max_ms"] == 90.0


def _jsonl(root, *objects, summary=None):
    root.mkdir(parents=True, exist_ok=True)
    (root / "run.jsonl").write_text("".join(json.dumps(o) + "\n" for o in objects))
    if summary is not None:
        (root / "summary.json").write_text(summary)
    return root


def test_schema_1_is_read_by_its_own_names_only(tmp_path):
    """A schema 1 log is read by the names `racer drive` writes; the legacy spellings mean
    nothing in it (a writer that drifts is caught, not papered over)."""
    head = {"kind": "run", "schema_version": 1, "rate_hz": 10.0}
    frame = {"frame": 0, "t_s": 5.0, "loop_ms": 20.0, "stages": {"infer": 15.0}}
    log = load_car_log(_jsonl(tmp_path / "ok", head, frame, {**frame, "t_s": 5.1}))
    s = series(log)
    assert s.period_ms == 100.0 and list(s.latency_ms) == [20.0, 20.0]
    assert set(s.stages_ms) == {"infer"} and s.steer_deg is None
    legacy_names = {"frame": 0, "t_ns": 5_000_000_000, "latency_ms": 20.0}
    drifted = load_car_log(_jsonl(tmp_path / "drift", head, legacy_names))
    with pytest.raises(CarLogError, match="no t_s"):
        series(drifted)
    spelled = {"frame": 0, "t_s": 5.0, "action": {"steer_deg": 5.0}, "timings_ms": {"x": 1.0}}
    s = series(load_car_log(_jsonl(tmp_path / "spelled", head, spelled)))
    assert s.steer_deg is None and s.latency_ms is None and s.stages_ms == {}


def test_schema_1_refuses_what_it_does_not_know(tmp_path):
    head = {"kind": "run", "schema_version": 1}
    frame = {"frame": 0, "t_s": 5.0}
    with pytest.raises(CarLogError, match="schema_version 2.*reads schema 1"):
        load_car_log(_jsonl(tmp_path / "new", {**head, "schema_version": 2}, frame))
    with pytest.raises(CarLogError, match=":3: a 'end' record inside a schema 1"):
        load_car_log(_jsonl(tmp_path / "kind", head, frame, {"kind": "end"}))
    with pytest.raises(CarLogError, match="summary.json: unreadable"):
        load_car_log(_jsonl(tmp_path / "summary", head, frame, summary='{"frames": '))


def test_legacy_spellings_map_onto_schema_1(tmp_path):
    """The other spellings earlier writers used (see `_LEGACY_FIELDS`) land on the
    schema 1 names: milliseconds time, `timings_ms.`, `link_ok`, `control_rate_hz`."""
    root = tmp_path / "old"
    (root / "frames").mkdir(parents=True)
    cv2.imwrite(str(root / "frames" / "img_1.png"), np.zeros((8, 8), np.uint8))
    records = [
        {"index": i, "t_ms": 1000 + 100 * i, "timings_ms": {"infer": 30.0 + i}, "link_ok": i != 1}
        for i in range(3)
    ]
    log = load_car_log(_jsonl(root, {"control_rate_hz": 10}, *records))
    assert log.schema_version is None and log.header["rate_hz"] == 10
    assert list(log.records["frame_file"].fillna("")) == ["", "frames/img_1.png", ""]
    s = series(log)
    assert list(s.t_s) == pytest.approx([0.0, 0.1, 0.2])
    assert list(s.latency_ms) == [30.0, 31.0, 32.0] and set(s.stages_ms) == {"infer"}
    assert list(s.link_errors) == [0.0, 1.0, 1.0] and s.period_ms == 100.0
