"""Typed errors of the analysis tools (`racer analyze`, `compare`, `race`, `eval --sweep`).

One base class with `exit_code = 2`, so `racer` prints one line naming the folder or file,
the bad value and the fix, instead of a traceback.
"""

from __future__ import annotations


class AnalysisError(Exception):
    """Base of every error the analysis tools raise on purpose."""

    exit_code = 2


class LogFolderError(AnalysisError):
    """A run folder holds no log layout we recognise, or its files are malformed."""


class TrackNotFoundError(AnalysisError):
    """The run's track cannot be determined or loaded; pass --track NAME or FILE.npy."""


class CarLogError(AnalysisError):
    """A car run log (from `racer drive`) is missing or malformed."""


class AnalysisWarning(UserWarning):
    """Something the report could not do and how to make it (e.g. the run names no track:
    pass --track); `racer` prints it as one line."""
