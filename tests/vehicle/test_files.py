"""vehicle.files: the atomic write (content, failure mid-way, directory fsync, concurrent
writers) and read_json's typed errors."""

from __future__ import annotations

import json
import os
import stat
import threading
from pathlib import Path

import pytest

from vehicle.errors import MetadataError, VehicleError
from vehicle.files import (
    atomic_path,
    atomic_write,
    atomic_write_json,
    atomic_write_text,
    read_json,
)


class _ReadError(Exception):
    exit_code = 2


def _leftovers(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.iterdir() if p.name.endswith((".tmp", ".tmp.png")))


def test_round_trip_bytes_text_json(tmp_path: Path) -> None:
    atomic_write(tmp_path / "a.bin", b"\x00\x01\xff")
    assert (tmp_path / "a.bin").read_bytes() == b"\x00\x01\xff"
    atomic_write_text(tmp_path / "deep" / "er" / "b.txt", "héllo")  # parents created
    assert (tmp_path / "deep" / "er" / "b.txt").read_text(encoding="utf-8") == "héllo"
    atomic_write_json(tmp_path / "c.json", {"b": [1, 2.5], "a": None}, sort_keys=True)
    text = (tmp_path / "c.json").read_text(encoding="utf-8")
    assert text.endswith("}\n") and text.index('"a"') < text.index('"b"')
    assert json.loads(text) == {"a": None, "b": [1, 2.5]}
    atomic_write(tmp_path / "a.bin", b"new")  # over an existing file
    assert (tmp_path / "a.bin").read_bytes() == b"new"
    assert _leftovers(tmp_path) == []


def test_modes_default_to_umask_or_are_exact(tmp_path: Path) -> None:
    old = os.umask(0o022)
    try:
        atomic_write(tmp_path / "plain", b"x")
        atomic_write(tmp_path / "secret", b"x", mode=0o600)
        atomic_write(tmp_path / "public", b"x", mode=0o644)
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / "plain").stat().st_mode) == 0o644
    assert stat.S_IMODE((tmp_path / "secret").stat().st_mode) == 0o600
    assert stat.S_IMODE((tmp_path / "public").stat().st_mode) == 0o644


def test_writer_raising_midway_leaves_original_and_no_temp(tmp_path: Path) -> None:
    target = tmp_path / "model.json"
    target.write_bytes(b'{"old": true}\n')
    with pytest.raises(RuntimeError, match="disk on fire"):
        with atomic_path(target) as tmp:
            tmp.write_bytes(b'{"new": tr')  # half written
            raise RuntimeError("disk on fire")
    assert target.read_bytes() == b'{"old": true}\n'
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model.json"]


def test_failed_fsync_leaves_original_and_no_temp(tmp_path: Path, monkeypatch) -> None:
    target = tmp_path / "pointer.json"
    target.write_bytes(b"old")

    def failing_fsync(fd: int) -> None:
        raise OSError(5, "Input/output error")

    monkeypatch.setattr(os, "fsync", failing_fsync)
    with pytest.raises(OSError, match="Input/output"):
        atomic_write(target, b"new content")
    assert target.read_bytes() == b"old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["pointer.json"]


def test_unserialisable_json_writes_nothing(tmp_path: Path) -> None:
    target = tmp_path / "summary.json"
    target.write_text("{}\n")
    with pytest.raises(TypeError):
        atomic_write_json(target, {"x": object()})
    assert target.read_text() == "{}\n" and _leftovers(tmp_path) == []
    atomic_write_json(target, {"x": object()}, default=lambda o: "obj")
    assert json.loads(target.read_text()) == {"x": "obj"}


def test_file_then_directory_fsynced_after_the_rename(tmp_path: Path, monkeypatch) -> None:
    target = tmp_path / "index.json"
    real_fsync = os.fsync
    calls: list[tuple[str, bytes | None]] = []

    def recording_fsync(fd: int) -> None:
        kind = "dir" if stat.S_ISDIR(os.fstat(fd).st_mode) else "file"
        calls.append((kind, target.read_bytes() if target.exists() else None))
        real_fsync(fd)

    monkeypatch.setattr(os, "fsync", recording_fsync)
    atomic_write(target, b"new")
    # the file is synced before the rename, the directory after it
    assert calls == [("file", None), ("dir", b"new")]


def test_directory_fsync_unsupported_is_tolerated_other_errors_raise(
    tmp_path: Path, monkeypatch
) -> None:
    real_fsync = os.fsync

    def fsync_no_dirs(errno_: int):  # type: ignore[no-untyped-def]
        def fsync(fd: int) -> None:
            if stat.S_ISDIR(os.fstat(fd).st_mode):
                raise OSError(errno_, os.strerror(errno_))
            real_fsync(fd)

        return fsync

    monkeypatch.setattr(os, "fsync", fsync_no_dirs(22))  # EINVAL: not supported here
    atomic_write(tmp_path / "a", b"1")
    assert (tmp_path / "a").read_bytes() == b"1"
    monkeypatch.setattr(os, "fsync", fsync_no_dirs(5))  # EIO: a real failure
    with pytest.raises(OSError, match="Input/output"):
        atomic_write(tmp_path / "a", b"2")


def test_concurrent_writers_never_share_a_temp_file(tmp_path: Path) -> None:
    target = tmp_path / "out.png"
    with atomic_path(target, suffix=".png") as first:
        with atomic_path(target, suffix=".png") as second:
            assert first != second and first.parent == second.parent == tmp_path
            assert first.name.startswith(".out.png.") and first.name.endswith(".tmp.png")
            first.write_bytes(b"A" * 1000)
            second.write_bytes(b"B" * 10)
        assert target.read_bytes() == b"B" * 10
    assert target.read_bytes() == b"A" * 1000  # the first writer's own file, whole
    assert _leftovers(tmp_path) == []


def test_many_threads_writing_one_path(tmp_path: Path) -> None:
    target = tmp_path / "progress.json"
    payloads = [bytes([65 + i]) * (50_000 + i) for i in range(8)]
    errors: list[BaseException] = []

    def writer(data: bytes) -> None:
        try:
            for _ in range(10):
                atomic_write(target, data)
        except BaseException as exc:  # pragma: no cover - what the test looks for
            errors.append(exc)

    threads = [threading.Thread(target=writer, args=(p,)) for p in payloads]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert target.read_bytes() in payloads
    assert _leftovers(tmp_path) == []


def test_read_json_returns_the_object(tmp_path: Path) -> None:
    path = tmp_path / "m.json"
    path.write_text('{"a": [1, 2]}')
    assert read_json(path, what="model metadata", error=MetadataError) == {"a": [1, 2]}


def test_read_json_missing_file(tmp_path: Path) -> None:
    path = tmp_path / "missing.json"
    with pytest.raises(_ReadError) as info:
        read_json(path, what="training config", error=_ReadError)
    message = str(info.value)
    assert message.startswith(f"{path}: cannot read it (No such file or directory)")
    assert "check the training config file's path" in message
    assert info.value.exit_code == 2
    with pytest.raises(MetadataError, match=r"missing\.json: nothing saved yet; run X$") as got:
        read_json(path, what="x", error=MetadataError, missing="nothing saved yet; run X")
    assert isinstance(got.value, VehicleError) and got.value.exit_code == 2


def test_read_json_invalid_json_names_line_and_column(tmp_path: Path) -> None:
    path = tmp_path / "h.json"
    path.write_text('{"lr": 0.001,\n  oops}')
    with pytest.raises(_ReadError) as info:
        read_json(path, what="hyperparameters", error=_ReadError, hint="the backup is at h.bak")
    message = str(info.value)
    assert message.startswith(f"{path}: not valid JSON at line 2 column 3: ")
    assert "fix that spot in the hyperparameters file; the backup is at h.bak" in message
    assert isinstance(info.value.__cause__, json.JSONDecodeError)
    assert info.value.exit_code == 2


@pytest.mark.parametrize("content, kind", [("[1, 2]", "list"), ('"text"', "str"), ("3", "int")])
def test_read_json_top_level_must_be_an_object(tmp_path: Path, content: str, kind: str) -> None:
    path = tmp_path / "calibration.json"
    path.write_text(content)
    with pytest.raises(MetadataError) as info:
        read_json(path, what="calibration", error=MetadataError)
    assert str(info.value) == (
        f"{path}: expected a JSON object at the top level, got {kind}; is it a calibration file?"
    )
    assert info.value.exit_code == 2


def test_read_json_unreadable_and_not_utf8(tmp_path: Path) -> None:
    with pytest.raises(_ReadError, match="cannot read it .*permissions") as info:
        read_json(tmp_path, what="run config", error=_ReadError)  # a directory
    assert info.value.exit_code == 2
    path = tmp_path / "latin1.json"
    path.write_bytes(b'{"name": "caf\xe9"}')
    with pytest.raises(_ReadError, match=r"latin1\.json: not UTF-8 text \(byte 13"):
        read_json(path, what="run config", error=_ReadError)
