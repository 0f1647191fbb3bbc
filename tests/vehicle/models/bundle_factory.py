"""Model bundles for the bundle, store and flashing tests: real tiny TFLite models (built
with TensorFlow once per process, see tiny_models.py) in real bundles, plus raw tar
surgery to make tampered ones."""

from __future__ import annotations

import gzip
import hashlib
import io
import os
import tarfile
from pathlib import Path

from tests.vehicle.tiny_models import tflite_bytes
from vehicle.metadata import ModelMetadata
from vehicle.models.bundle import Bundle, write_bundle


def make_bundle(
    path: Path,
    name: str = "tiny",
    *,
    quant: str = "int8",
    n_out: int = 10,
    seed: int = 0,
    metadata: ModelMetadata | None = None,
    signing_key=None,
) -> Bundle:
    """A real bundle of a tiny 10-action CNN (metadata: the console default action space)."""
    return write_bundle(
        path,
        name=name,
        model_bytes=tflite_bytes(n_out, quant, seed),
        metadata=metadata or ModelMetadata(),
        source={"run": "runs/test", "checkpoint": "best", "tracks": ["oval"]},
        parity={"agreement": 1.0, "frames": 16},
        quantization={"format": quant},
        signing_key=signing_key,
    )


def members(path: Path) -> list[tuple[tarfile.TarInfo, bytes]]:
    """(header, content) of every member of a bundle, in order."""
    out = []
    with tarfile.open(path, "r:gz") as tar:
        for info in tar:
            fh = tar.extractfile(info)
            out.append((info, fh.read() if fh else b""))
    return out


def rewrite(path: Path, out: Path, entries: list[tuple[tarfile.TarInfo, bytes]]) -> Path:
    """Write `entries` as a .tar.gz at `out` (no checks: for making bad bundles)."""
    raw = io.BytesIO()
    with gzip.GzipFile(fileobj=raw, mode="wb") as gz, tarfile.open(fileobj=gz, mode="w") as tar:
        for info, data in entries:
            info = tarfile.TarInfo(info.name) if info is None else info
            if info.isreg():
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))
            else:
                tar.addfile(info)
    out.write_bytes(raw.getvalue())
    return out


def regular(name: str, data: bytes) -> tuple[tarfile.TarInfo, bytes]:
    """A regular-file member."""
    info = tarfile.TarInfo(name)
    info.size = len(data)
    return info, data


def link(name: str, target: str, *, hard: bool = False) -> tuple[tarfile.TarInfo, bytes]:
    """A symlink (or hard link) member."""
    info = tarfile.TarInfo(name)
    info.type = tarfile.LNKTYPE if hard else tarfile.SYMTYPE
    info.linkname = target
    return info, b""


def tree_digest(root: Path) -> dict[str, str]:
    """Every file under `root` (relative path -> sha256), ignoring the lock file and empty
    staging folder: two equal digests mean the store did not change."""
    out = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for fname in filenames:
            p = Path(dirpath) / fname
            rel = str(p.relative_to(root))
            if rel == "_lock":
                continue
            out[rel] = hashlib.sha256(p.read_bytes()).hexdigest()
        for d in dirnames:
            p = Path(dirpath) / d
            rel = str(p.relative_to(root))
            if rel != "_staging":
                out[rel + "/"] = "dir"
    return out
