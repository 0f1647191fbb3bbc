"""Where the calibration lives on disk and how it is read, migrated and saved.

The file is JSON with a `schema_version`. Saving never leaves a half-written file: the new
text goes to a temporary file in the same directory, the previous file is copied to
`<name>.bak` (itself written atomically), and only then is the new file fsynced and
swapped in with `os.replace`; the directory is fsynced last (`vehicle.files` does each
step). A crash or `kill -9` at any instant leaves either the old or the new file at the
path, never a mix.

Default path: `$OPENRACER_CALIBRATION`, else `$XDG_CONFIG_HOME/openracer/calibration.json`,
else `~/.config/openracer/calibration.json`.

Schema history:
- 0: no `schema_version`, DeepRacer's own layout (`{"Calibration": {"Servo", "Motor"}}`),
  e.g. `/opt/aws/deepracer/calibration.json` copied over; migrated through
  `calibration.deepracer`.
- 1: the openracer layout of `Calibration.to_dict`.

Runs on the car: no Textual, no training stack.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

from calibration.errors import CalibrationError, CalibrationFileError
from calibration.model import Calibration
from vehicle.files import atomic_path, atomic_write, read_json

SCHEMA_VERSION = 1
"""Version written by this code; older files are migrated on load, newer ones refused."""
ENV_PATH = "OPENRACER_CALIBRATION"
"""Environment variable that overrides the default calibration path."""
ENV_SAVE_PAUSE = "OPENRACER_TEST_SAVE_PAUSE_S"
"""Fault injection for the crash-during-save test: seconds to sleep after the new file is
written and before it replaces the old one. Never set it in normal use."""


def default_path() -> Path:
    """The calibration path used when no `--file` is given."""
    env = os.environ.get(ENV_PATH)
    if env:
        return Path(env).expanduser()
    base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "openracer" / "calibration.json"


def write_atomic(path: Path, text: str, *, backup: bool = True) -> None:
    """Write `text` to `path` so that the path always holds the old or the new content;
    with `backup`, keep the previous content at `path.with_suffix(path.suffix + '.bak')`."""
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        # temp files of a save that was killed before its rename (one writer per file)
        for stale in path.parent.glob(f".{path.name}.*.tmp"):
            stale.unlink(missing_ok=True)
        with atomic_path(path) as tmp:
            tmp.write_bytes(text.encode("utf-8"))
            if backup and path.exists():
                atomic_write(backup_path(path), path.read_bytes())
            pause = float(os.environ.get(ENV_SAVE_PAUSE, "0") or 0)
            if pause > 0:
                time.sleep(pause)
    except OSError as exc:
        raise CalibrationFileError(
            f"{path}: cannot save ({exc.strerror or exc}); check the directory exists and "
            "is writable, or pass --file"
        ) from exc


def backup_path(path: Path) -> Path:
    """Where the previous version of `path` is kept."""
    return path.with_name(path.name + ".bak")


def migrate(data: Any, *, source: str) -> dict[str, Any]:
    """Bring a parsed file of any known schema up to `SCHEMA_VERSION`."""
    if not isinstance(data, dict):
        raise CalibrationFileError(f"{source}: expected a JSON object, got {type(data).__name__}")
    version = data.get("schema_version")
    if version is None:
        if "Calibration" in data:
            from calibration.deepracer import from_deepracer_dict

            cal = from_deepracer_dict(data, source=source)
            return {"schema_version": SCHEMA_VERSION, **cal.to_dict()}
        raise CalibrationFileError(
            f"{source}: no 'schema_version' and not a DeepRacer calibration.json; "
            "is this an openracer calibration file?"
        )
    if isinstance(version, bool) or not isinstance(version, int) or version < 1:
        raise CalibrationFileError(
            f"{source}: schema_version {version!r} is not a positive integer"
        )
    if version > SCHEMA_VERSION:
        raise CalibrationFileError(
            f"{source}: schema_version {version} was written by a newer openracer (this one "
            f"reads up to {SCHEMA_VERSION}); upgrade openracer on this machine"
        )
    return data


class CalibrationStore:
    """The calibration file at one path: load (migrating), save (atomic, with backup)."""

    def __init__(self, path: Path | None = None) -> None:
        self.path = Path(path) if path is not None else default_path()

    @property
    def backup(self) -> Path:
        """The previous file, kept by every save."""
        return backup_path(self.path)

    def exists(self) -> bool:
        """Whether a calibration has ever been saved at this path."""
        return self.path.exists()

    def load(self) -> Calibration:
        """Read, migrate and validate the file; `CalibrationFileError` if it is missing."""
        data = read_json(
            self.path,
            what="calibration",
            error=CalibrationFileError,
            missing=f"no calibration saved yet; run `racer calibrate` first (or set {ENV_PATH})",
            hint=f"the previous version is at {self.backup}" if self.backup.exists() else "",
        )
        data = migrate(data, source=str(self.path))
        body = {k: v for k, v in data.items() if k != "schema_version"}
        try:
            return Calibration.from_dict(body, source=str(self.path))
        except CalibrationError as exc:
            raise CalibrationFileError(str(exc)) from exc

    def load_or_default(self) -> Calibration:
        """The saved calibration, or the DeepRacer factory defaults if none is saved yet.
        A file that exists but is broken still raises."""
        return self.load() if self.exists() else Calibration()

    def save(self, cal: Calibration) -> None:
        """Write `cal` atomically, keeping the previous file as `.bak`."""
        text = json.dumps({"schema_version": SCHEMA_VERSION, **cal.to_dict()}, indent=2)
        write_atomic(self.path, text + "\n", backup=True)

    def restore_backup(self) -> None:
        """Put the previous file back (the current one becomes the backup)."""
        if not self.backup.exists():
            raise CalibrationFileError(f"{self.backup}: no backup to restore")
        current = self.path.read_bytes() if self.path.exists() else None
        old = self.backup.read_bytes().decode("utf-8")
        write_atomic(self.path, old, backup=False)
        if current is not None:
            write_atomic(self.backup, current.decode("utf-8"), backup=False)


__all__ = ["CalibrationStore", "SCHEMA_VERSION", "default_path", "migrate", "write_atomic"]
