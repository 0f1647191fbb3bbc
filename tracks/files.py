"""Atomic file writes for tracks/ (route files, pictures, the user catalogue).

A copy of `vehicle.files.atomic_write`, kept here on purpose: tracks/ imports no other
openracer package (ARCHITECTURE.md's import rule), so it cannot use vehicle's. It behaves
the same: a temporary file `.<name>.<random>.tmp` beside the target, created exclusively
with a plain file's mode, written, fsynced, `os.replace`d over the target, the directory
fsynced; if anything fails the temporary file is removed and the old file is untouched.
Unlike vehicle's, it creates no directories (callers check the directory first).
"""

from __future__ import annotations

import errno
import os
import secrets
from pathlib import Path


def atomic_write(path: Path, data: bytes) -> Path:
    """Write `data` to `path` so that `path` always holds the old or the new content."""
    directory = path.parent if str(path.parent) else Path(".")
    while True:
        tmp = path.with_name(f".{path.name}.{secrets.token_hex(6)}.tmp")
        try:
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
            break
        except FileExistsError:
            continue
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    dir_fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    except OSError as exc:  # some file systems cannot fsync a directory
        if exc.errno not in (errno.EINVAL, errno.ENOTSUP, errno.EOPNOTSUPP):
            raise
    finally:
        os.close(dir_fd)
    return path
