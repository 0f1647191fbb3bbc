"""Which track each episode drives: one fixed track, a list (one drawn per episode with the
env's generator), or an iterator/generator of tracks (the next one per episode). Names,
`.npy` paths and `Track` objects are resolved through `tracks.catalogue`.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import numpy as np

from sim2real.errors import TrackInputError
from tracks import catalogue
from tracks.track import Track


def resolve_track(spec: Any) -> Track:
    """A `Track`, a `.npy` path, or a catalogue name -> a `Track` (`tracks.catalogue`)."""
    if isinstance(spec, Track | str | Path):
        return catalogue.resolve(spec)
    raise TrackInputError(
        f"track {spec!r}: expected a catalogue name, a .npy path, a Track, or a list of them"
    )


class TrackSource:
    """Which track each episode uses: a fixed one, a list (drawn), or an iterator (next)."""

    def __init__(self, spec: Any) -> None:
        self.fixed: Track | None = None
        self.choices: list[Any] = []
        self.iterator: Iterator[Any] | None = None
        if isinstance(spec, Track | str | Path):
            self.fixed = resolve_track(spec)
        elif isinstance(spec, list | tuple):
            if not spec:
                raise TrackInputError("track: the list of tracks is empty")
            self.choices = list(spec)
        elif isinstance(spec, Iterable):
            self.iterator = iter(spec)
        else:
            raise TrackInputError(
                f"track {spec!r}: expected a catalogue name, a .npy path, a Track, or a "
                "list or generator of them"
            )
        self._resolved: dict[int, Track] = {}

    def first(self) -> Track:
        if self.fixed is not None:
            return self.fixed
        if self.choices:
            return self._choice(0)
        assert self.iterator is not None
        first = self._next()
        self.iterator = itertools.chain([first], self.iterator)
        return first

    def _choice(self, i: int) -> Track:
        if i not in self._resolved:
            self._resolved[i] = resolve_track(self.choices[i])
        return self._resolved[i]

    def _next(self) -> Track:
        assert self.iterator is not None
        try:
            return resolve_track(next(self.iterator))
        except StopIteration as exc:
            raise TrackInputError("track: the track generator is exhausted") from exc

    def draw(self, rng: np.random.Generator) -> Track:
        if self.fixed is not None:
            return self.fixed
        if self.choices:
            return self._choice(int(rng.integers(len(self.choices))))
        return self._next()
