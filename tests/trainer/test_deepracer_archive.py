"""DeepRacer model archives: finding model_metadata.json and the one .pb in tarballs and
folders as the AWS car does, every refusal, and the car archive's layout."""

from __future__ import annotations

import io
import json
import tarfile
from pathlib import Path

import pytest

from trainer.deepracer_archive import open_archive, write_car_archive
from trainer.errors import DeepRacerModelError

META = {"action_space": [{"steering_angle": 0, "speed": 1.0}], "sensor": ["FRONT_FACING_CAMERA"]}


def tarball(path: Path, members: dict[str, bytes]) -> Path:
    with tarfile.open(path, "w:gz") as tar:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return path


def test_console_tarball_layout_is_found(tmp_path):
    src = tarball(
        tmp_path / "physicalmodel-x.tar.gz",
        {"model_metadata.json": json.dumps(META).encode(), "agent/model.pb": b"graph"},
    )
    a = open_archive(src, tmp_path / "work")
    assert a.graph_member == "agent/model.pb" and a.graph_path.read_bytes() == b"graph"
    assert a.metadata == META and a.metadata_path.parent == a.root


def test_training_folder_with_several_checkpoints_needs_graph(tmp_path):
    folder = tmp_path / "model"
    folder.mkdir()
    (folder / "model_metadata.json").write_text(json.dumps(META))
    for n in (15, 30):
        (folder / f"model_{n}.pb").write_bytes(b"g%d" % n)
    with pytest.raises(DeepRacerModelError, match=r"2 frozen graphs .*--graph model_30.pb"):
        open_archive(folder, tmp_path / "work")
    a = open_archive(folder, tmp_path / "work", graph="model_15.pb")
    assert a.graph_path.read_bytes() == b"g15"  # metadata beside the .pb
    with pytest.raises(DeepRacerModelError, match="--graph 'model_99.pb' matches 0"):
        open_archive(folder, tmp_path / "work", graph="model_99.pb")


def test_missing_metadata_is_refused(tmp_path):
    src = tarball(tmp_path / "m.tar.gz", {"agent/model.pb": b"graph"})
    with pytest.raises(DeepRacerModelError, match="no model_metadata.json at the archive's root"):
        open_archive(src, tmp_path / "work")


def test_no_graph_is_refused(tmp_path):
    src = tarball(tmp_path / "m.tar.gz", {"model_metadata.json": json.dumps(META).encode()})
    with pytest.raises(DeepRacerModelError, match=r"no frozen graph \(\*\.pb\)"):
        open_archive(src, tmp_path / "work")


def test_truncated_or_foreign_files_are_refused(tmp_path):
    src = tarball(
        tmp_path / "m.tar.gz",
        {"model_metadata.json": json.dumps(META).encode(), "agent/model.pb": b"x" * 50_000},
    )
    cut = tmp_path / "cut.tar.gz"
    cut.write_bytes(src.read_bytes()[:200])
    with pytest.raises(DeepRacerModelError, match="cannot unpack it"):
        open_archive(cut, tmp_path / "work")
    zipped = tmp_path / "model.zip"
    zipped.write_bytes(b"PK")
    with pytest.raises(DeepRacerModelError, match="not a DeepRacer model archive"):
        open_archive(zipped, tmp_path / "work")
    with pytest.raises(DeepRacerModelError, match="no such file or folder"):
        open_archive(tmp_path / "absent.tar.gz", tmp_path / "work")


def test_bad_metadata_json_is_refused(tmp_path):
    src = tarball(tmp_path / "m.tar.gz", {"model_metadata.json": b"{", "agent/model.pb": b"g"})
    with pytest.raises(DeepRacerModelError, match="not a readable JSON file"):
        open_archive(src, tmp_path / "work")


def test_members_escaping_the_folder_are_refused(tmp_path):
    src = tarball(
        tmp_path / "m.tar.gz",
        {"model_metadata.json": json.dumps(META).encode(), "../evil.pb": b"g"},
    )
    with pytest.raises(DeepRacerModelError, match="cannot unpack it"):
        open_archive(src, tmp_path / "work")
    assert not (tmp_path / "evil.pb").exists()


def test_car_archive_has_the_console_layout_and_reads_back(tmp_path):
    out = write_car_archive(tmp_path / "car.tar.gz", META, b"graph bytes")
    with tarfile.open(out) as tar:
        files = {m.name: tar.extractfile(m).read() for m in tar.getmembers() if m.isfile()}
    assert set(files) == {"model_metadata.json", "agent/model.pb"}
    assert json.loads(files["model_metadata.json"]) == META
    a = open_archive(out, tmp_path / "work")
    assert a.graph_member == "agent/model.pb" and a.graph_path.read_bytes() == b"graph bytes"
    assert not list(tmp_path.glob(".*.tmp"))
