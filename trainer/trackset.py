"""The tracks a run trains and evaluates on: names or `.npy` paths resolved to `Track`s,
procedurally generated training tracks, and each track's physical lap-time limit.

A thin layer over `tracks/` (the catalogue, the generator and the racing line live
there); it turns their errors into one-line `TrainConfigError`s that say which option was bad.
"""

from __future__ import annotations

from typing import Any

from trainer.errors import TrainConfigError

GENERATED_LENGTH_M = (14.0, 30.0)
"""Length range of generated training tracks (re:Invent 2018 is about 17.7 m)."""
GENERATED_WIDTHS_M = (0.76, 0.9, 1.07)
"""Widths of generated training tracks, cycled (the catalogue's 0.76 m up to DeepRacer's
1.07 m road), so a policy does not learn one road width."""


def resolve_track(track: Any) -> Any:
    """A `tracks.Track` for a catalogue name, a `.npy` path or a Track."""
    from tracks.catalogue import resolve
    from tracks.errors import TrackError

    try:
        return resolve(track)
    except TrackError as exc:
        raise TrainConfigError(f"--track {track}: {exc}") from exc


_LIMITS: dict[int, float] = {}


def limit_lap_time_s(track: Any) -> float | None:
    """The track's physical lap-time limit (flying lap on the racing line), seconds."""
    from tracks.racing_line import racing_line

    key = id(track)
    if key not in _LIMITS:
        try:
            _LIMITS[key] = float(racing_line(track).limit_lap_time_s)
        except Exception:  # a limit is a yardstick; its absence must not stop a run
            return None
    return _LIMITS[key]


def generated_tracks(n: int, seed: int) -> list[Any]:
    """`n` procedurally generated closed tracks, deterministic for `seed`."""
    from tracks.generator import generate

    return [
        generate(
            seed=seed * 100003 + i,
            length_range_m=GENERATED_LENGTH_M,
            width_m=GENERATED_WIDTHS_M[i % len(GENERATED_WIDTHS_M)],
            clockwise=bool(i % 2),
        )
        for i in range(n)
    ]


def training_tracks(names: tuple[str, ...], generated: int, seed: int) -> list[Any]:
    """Every training track of a run, catalogue/file tracks first."""
    out = [resolve_track(t) for t in names]
    out += generated_tracks(generated, seed)
    if not out:
        raise TrainConfigError("no training track: give --track NAME or --generated N")
    return out
