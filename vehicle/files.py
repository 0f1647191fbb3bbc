"""Files on disk: written atomically, and JSON files read with typed errors.

Every openracer file is written the same way: a temporary file with a unique name in the
target's own directory (so two writers never share one, and the rename never crosses a
file system), written, flushed and fsynced, `os.replace`d over the target, then the
directory fsynced so the rename itself survives a power cut. A crash or `kill -9` at any
instant leaves the old file or the new one at the path, never a mix; if the writer raises,
the temporary file is removed and the old file is untouched.

Temporary names are `.<name>.<random>.tmp` (plus a suffix for writers that pick the format
from the file name), so a folder's leftovers of a killed writer match `.*.tmp`.

`read_json` reads a file that must hold one JSON object and raises the caller's own error
class (each package has its own `errors.py`) with a message naming the file, the problem
and the fix.

Runs on the car: standard library only. tracks/ keeps its own copy of the write
(`tracks/files.py`) because it may import no other openracer package.
"""

from __future__ import annotations

import errno
import json
import os
import secrets
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

PathLike = str | os.PathLike[str]

_DIR_FSYNC_UNSUPPORTED = {errno.EINVAL, errno.ENOTSUP, errno.EOPNOTSUPP}


def atomic_write(path: PathLike, data: bytes, *, mode: int | None = None) -> Path:
    """Write `data` to `path` so that `path` always holds the old or the new content.

    Missing parent directories are created. `mode` sets the file's permission bits
    exactly (e.g. 0o600 for a private key); by default they are what a plain `open` gives
    (0o666 less the umask). Returns the path.
    """
    with atomic_path(path, mode=mode) as tmp, open(tmp, "wb") as fh:
        fh.write(data)
    return Path(path)


def atomic_write_text(path: PathLike, text: str) -> Path:
    """`atomic_write` of `text` as UTF-8."""
    return atomic_write(path, text.encode("utf-8"))


def atomic_write_json(
    path: PathLike,
    obj: Any,
    *,
    sort_keys: bool = False,
    default: Callable[[Any], Any] | None = None,
) -> Path:
    """`atomic_write` of `obj` as JSON (indent 2, trailing newline). `default` converts
    values `json` cannot (as in `json.dumps`); nothing is written if conversion fails."""
    text = json.dumps(obj, indent=2, sort_keys=sort_keys, default=default) + "\n"
    return atomic_write_text(path, text)


@contextmanager
def atomic_path(path: PathLike, *, suffix: str = "", mode: int | None = None) -> Iterator[Path]:
    """A temporary path beside `path` to write to; on success it replaces `path`.

    For writers that want a file name or their own file object (`cv2.imwrite`, matplotlib's
    `savefig`, imageio, `tarfile`): write the temporary path in the `with` body. When the
    body ends, the file is fsynced, renamed over `path` and the directory fsynced; if the
    body raises, the temporary file is removed and `path` is untouched. `suffix` ends the
    temporary name (e.g. ".png") for writers that choose the format by extension. The
    temporary file exists (empty) when the body starts.
    """
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = _create_temp(target, suffix, mode)
    try:
        yield tmp
        with open(tmp, "rb+") as fh:
            os.fsync(fh.fileno())
        os.replace(tmp, target)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    fsync_directory(target.parent)


def fsync_directory(directory: PathLike) -> None:
    """Make renames and new entries in `directory` durable (a no-op on file systems that
    cannot fsync a directory)."""
    fd = os.open(directory, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    try:
        os.fsync(fd)
    except OSError as exc:
        if exc.errno not in _DIR_FSYNC_UNSUPPORTED:
            raise
    finally:
        os.close(fd)


def read_json(
    path: PathLike,
    *,
    what: str,
    error: type[Exception],
    missing: str | None = None,
    hint: str = "",
) -> dict[str, Any]:
    """The JSON object in `path`, or `error(message)` naming the file, problem and fix.

    `what` names the file's role in messages ("model metadata", "training config").
    `missing` replaces the message for a file that does not exist (after "<path>: ");
    without it a missing file is reported like an unreadable one. `hint` is appended to
    every other message (e.g. where a backup copy is).
    """
    path = Path(path)
    extra = f"; {hint}" if hint else ""
    try:
        text = path.read_text(encoding="utf-8-sig")  # a byte-order mark (Windows editors) is fine
    except FileNotFoundError as exc:
        if missing is not None:
            raise error(f"{path}: {missing}") from exc
        raise error(
            f"{path}: cannot read it ({exc.strerror}); check the {what} file's path{extra}"
        ) from exc
    except OSError as exc:
        raise error(
            f"{path}: cannot read it ({exc.strerror or exc}); check the {what} file's path "
            f"and permissions{extra}"
        ) from exc
    except UnicodeDecodeError as exc:
        raise error(
            f"{path}: not UTF-8 text (byte {exc.start}: {exc.reason}); is it a {what} file?{extra}"
        ) from exc
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise error(
            f"{path}: not valid JSON at line {exc.lineno} column {exc.colno}: {exc.msg}; "
            f"fix that spot in the {what} file{extra}"
        ) from exc
    if not isinstance(data, dict):
        raise error(
            f"{path}: expected a JSON object at the top level, got {type(data).__name__}; "
            f"is it a {what} file?{extra}"
        )
    return data


def _create_temp(target: Path, suffix: str, mode: int | None) -> Path:
    """Create an empty, uniquely named file beside `target` (never an existing one)."""
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL
    while True:
        tmp = target.with_name(f".{target.name}.{secrets.token_hex(6)}.tmp{suffix}")
        try:
            fd = os.open(tmp, flags, 0o666 if mode is None else mode)
        except FileExistsError:
            continue
        try:
            if mode is not None:
                os.fchmod(fd, mode)  # exactly `mode`, whatever the umask
        except BaseException:
            os.close(fd)
            tmp.unlink(missing_ok=True)
            raise
        os.close(fd)
        return tmp


__all__ = [
    "atomic_path",
    "atomic_write",
    "atomic_write_json",
    "atomic_write_text",
    "fsync_directory",
    "read_json",
]
