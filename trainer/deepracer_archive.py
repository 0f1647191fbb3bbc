"""DeepRacer model archives: the files a DeepRacer car model is moved in, read and written.

What is read (`open_archive`): the console's "Download physical model" tarball, the
`carfile.tar.gz` of deepracer-for-cloud, or a folder such as a training run's S3 `model/`
prefix. The AWS car accepts exactly one `*.pb` anywhere in the archive and reads
`model_metadata.json` from its root (wave-2 reference section 3.2); openracer does the same,
and also takes the `model_metadata.json` beside the chosen `.pb` (a training prefix keeps it
there), and `graph=` picks one `.pb` when a folder holds several checkpoints
(`model_15.pb`, `model_30.pb`, ...).

What is written (`write_car_archive`): `model_metadata.json` at the root and the frozen graph
as `agent/model.pb`, the layout of the SageMaker artifact the console serves, as one
atomically written `.tar.gz`.

Standard library only (the graph itself is `trainer.deepracer_graph`'s business). Tar
members are extracted with the `data` filter: no links out, no absolute paths, no devices.
"""

from __future__ import annotations

import io
import json
import tarfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from trainer.errors import DeepRacerModelError
from vehicle.files import atomic_write

METADATA_FILE = "model_metadata.json"
"""The metadata's name, at the archive's root."""
CAR_GRAPH_MEMBER = "agent/model.pb"
"""Where the frozen graph sits in the archives the console and DRfC make."""
MAX_ARCHIVE_BYTES = 1024 * 1024 * 1024
"""Largest archive unpacked (a DeepRacer SHALLOW graph is about 23 MB)."""
_TAR_SUFFIXES = (".tar.gz", ".tgz", ".tar", ".gz")


@dataclass(frozen=True)
class DeepRacerArchive:
    """A DeepRacer model found in an archive or folder."""

    source: Path
    """The archive or folder named on the command line."""
    root: Path
    """The folder it was read from (the unpacked copy for a tarball)."""
    graph_path: Path
    """The frozen graph (`.pb`) chosen."""
    metadata_path: Path
    """The `model_metadata.json` used."""
    metadata: dict[str, Any]
    """Its content, as DeepRacer wrote it."""

    @property
    def graph_member(self) -> str:
        """The graph's path inside the archive (for messages and provenance)."""
        return self.graph_path.relative_to(self.root).as_posix()


def open_archive(
    source: str | Path, workdir: str | Path, graph: str | None = None
) -> DeepRacerArchive:
    """The DeepRacer model in `source` (a `.tar.gz`/`.tgz`/`.tar` file or a folder);
    tarballs are unpacked into `workdir`. `graph` chooses the `.pb` (its path inside the
    archive, or its file name) when there are several."""
    src = Path(source).expanduser()
    if src.is_dir():
        root = src
    elif src.is_file():
        if not src.name.lower().endswith(_TAR_SUFFIXES):
            raise DeepRacerModelError(
                f"{src}: not a DeepRacer model archive (expected a .tar.gz, .tgz or .tar from "
                "the console's 'Download physical model' or DRfC's carfile, or a folder)"
            )
        root = Path(workdir) / "archive"
        _unpack(src, root)
    else:
        raise DeepRacerModelError(
            f"{src}: no such file or folder; pass the .tar.gz the DeepRacer console or "
            "deepracer-for-cloud gave you, or the folder holding model_metadata.json and the .pb"
        )
    graphs = sorted(p for p in root.rglob("*.pb") if p.is_file())
    graph_path = _choose_graph(src, root, graphs, graph)
    candidates = [root / METADATA_FILE, graph_path.parent / METADATA_FILE]
    metadata_path = next((p for p in candidates if p.is_file()), None)
    if metadata_path is None:
        raise DeepRacerModelError(
            f"{src}: no {METADATA_FILE} at the archive's root or beside "
            f"{graph_path.relative_to(root).as_posix()}; the action space is in that file: copy "
            "it from the model's training folder (S3 prefix model/) next to the .pb"
        )
    try:
        metadata = json.loads(metadata_path.read_text(encoding="utf-8-sig"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise DeepRacerModelError(
            f"{metadata_path}: not a readable JSON file ({exc}); replace it with the "
            f"model's own {METADATA_FILE}"
        ) from exc
    if not isinstance(metadata, dict):
        raise DeepRacerModelError(
            f"{metadata_path}: expected a JSON object, got {type(metadata).__name__}"
        )
    return DeepRacerArchive(
        source=src, root=root, graph_path=graph_path, metadata_path=metadata_path, metadata=metadata
    )


def _unpack(src: Path, dest: Path) -> None:
    if src.stat().st_size > MAX_ARCHIVE_BYTES:
        raise DeepRacerModelError(
            f"{src}: {src.stat().st_size:,} bytes is larger than any DeepRacer model "
            f"({MAX_ARCHIVE_BYTES:,} accepted); is it the right file?"
        )
    dest.mkdir(parents=True, exist_ok=True)
    try:
        with tarfile.open(src) as tar:
            tar.extractall(dest, filter="data")
    except (tarfile.TarError, EOFError, OSError, ValueError) as exc:
        raise DeepRacerModelError(
            f"{src}: cannot unpack it ({type(exc).__name__}: {exc}); the download is "
            "truncated or not a tar archive: download the model again"
        ) from exc


def _choose_graph(src: Path, root: Path, graphs: list[Path], wanted: str | None) -> Path:
    names = [p.relative_to(root).as_posix() for p in graphs]
    if not graphs:
        raise DeepRacerModelError(
            f"{src}: holds no frozen graph (*.pb); a DeepRacer car model has exactly one, "
            "e.g. agent/model.pb: download the physical-car model, not the training files"
        )
    if wanted is not None:
        hits = [p for p, n in zip(graphs, names, strict=True) if wanted in (n, p.name)]
        if len(hits) != 1:
            raise DeepRacerModelError(
                f"{src}: --graph {wanted!r} matches {len(hits)} of its .pb files {names}; "
                "give one of those paths"
            )
        return hits[0]
    if len(graphs) > 1:
        raise DeepRacerModelError(
            f"{src}: holds {len(graphs)} frozen graphs {names}, and a DeepRacer car loads "
            f"exactly one; choose with --graph {names[-1]}"
        )
    return graphs[0]


def write_car_archive(path: str | Path, metadata: dict[str, Any], graph_bytes: bytes) -> Path:
    """Write the archive a stock AWS DeepRacer car loads: `model_metadata.json` at the root,
    the frozen graph as `agent/model.pb`; atomically (the old file or the new one)."""
    members = [
        (METADATA_FILE, (json.dumps(metadata, indent=2) + "\n").encode("utf-8")),
        (CAR_GRAPH_MEMBER, graph_bytes),
    ]
    mtime = int(time.time())
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w:gz", format=tarfile.USTAR_FORMAT) as tar:
        info = tarfile.TarInfo("agent")
        info.type = tarfile.DIRTYPE
        info.mode = 0o755
        info.mtime = mtime
        tar.addfile(info)
        for name, data in members:
            info = tarfile.TarInfo(name)
            info.size = len(data)
            info.mtime = mtime
            info.mode = 0o644
            tar.addfile(info, io.BytesIO(data))
    return atomic_write(path, raw.getvalue())
