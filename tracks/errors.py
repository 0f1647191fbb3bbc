"""Typed errors of the tracks package. One base class; every message names the track or
file, the bad value and the fix. `exit_code` is what `racer` exits with when one escapes."""

from __future__ import annotations


class TrackError(Exception):
    """Base of every error the tracks package raises on purpose."""

    exit_code = 2


class TrackFileError(TrackError):
    """A track file cannot be read or written (missing, not a .npy, unreadable, refused)."""


class TrackValidationError(TrackError):
    """Track data is malformed: wrong shape or dtype, NaN, too few points, repeated points,
    a self-intersecting centre line, crossing borders, non-positive width."""


class UnknownTrackError(TrackError):
    """A track name is neither in the built-in nor in the user catalogue, nor a file."""


class GeneratorError(TrackError):
    """The procedural generator was asked for something it cannot build."""
