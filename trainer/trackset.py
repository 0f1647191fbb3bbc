"""The tracks a run trains and evaluates on: names or `.npy` paths resolved to `Track`s,
procedurally generated training tracks, and each track's physical lap-time limit.

A thin layer over `tracks/` (the catalogue, the generator and the racing line live
there); it turns their errors into one-line `ConfigError`s that say which option was bad.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from trainer.errors import ConfigError

GENERATED_LENGTH_M = (14.0, 30.0)
"""Length range of generated training tracks (re:Invent 2018 is about 17.7 m)."""
GENERATED_WIDTH_M = 1.07
"""Width of generated training tracks (DeepRacer's standard 1.07 m road)."""


def resolve_track(track: Any) -> Any:
    """A `tracks.Track` for a catalogue name, a `.npy` path or a Track."""
    import tracks
    from tracks.errors import TrackError

    if not isinstance(track, str | Path):
        return track
    text = str(track)
    try:
        if text.endswith(".npy") or Path(text).is_file():
            from tracks.track import load_npy

            return load_npy(text)
        catalogue = getattr(tracks, "get_track", None) or getattr(tracks, "load_track", None)
        if catalogue is None:
            from tracks import catalogue as cat  # type: ignore[attr-defined]

            catalogue = getattr(cat, "get", None) or cat.load
        return catalogue(text)
    except TrackError as exc:
        raise ConfigError(f"track {text!r}: {exc}") from exc
    except (ImportError, AttributeError) as exc:
        raise ConfigError(
            f"track {text!r}: the track catalogue is not available in this checkout ({exc}); "
            "pass a DeepRacer .npy file instead"
        ) from exc


def limit_lap_time_s(track: Any) -> float | None:
    """The track's physical lap-time limit (racing line), or None if it cannot be computed."""
    for value in (getattr(track, "limit_lap_time_s", None),):
        if isinstance(value, int | float):
            return float(value)
        if callable(value):
            return float(value())
    try:
        from tracks import racing_line  # type: ignore[attr-defined]
    except ImportError:
        return None
    for name in ("limit_lap_time_s", "lap_time_limit_s"):
        fn = getattr(racing_line, name, None)
        if callable(fn):
            return float(fn(track))
    return None


def generated_tracks(n: int, seed: int) -> list[Any]:
    """`n` procedurally generated closed tracks, deterministic for `seed`."""
    if n <= 0:
        return []
    try:
        from tracks.generator import generate  # type: ignore[import-not-found]
    except ImportError as exc:
        raise ConfigError(
            "--generated needs the track generator (tracks.generator), which is not available "
            "in this checkout"
        ) from exc
    return [generate(seed=seed * 100003 + i) for i in range(n)]


def training_tracks(names: tuple[str, ...], generated: int, seed: int) -> list[Any]:
    """Every training track of a run, catalogue/file tracks first."""
    out = [resolve_track(t) for t in names]
    out += generated_tracks(generated, seed)
    if not out:
        raise ConfigError("no training track: give --track NAME or --generated N")
    return out
