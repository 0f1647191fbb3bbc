"""Typed errors of the calibration package. One base class; every message names the thing,
the bad value and the likely fix. `exit_code` is what `racer` exits with when one escapes.

Runs on the car: no Textual, no training stack.
"""

from __future__ import annotations


class CalibrationError(Exception):
    """Base of every error the calibration package raises on purpose."""

    exit_code = 2


class CalibrationValueError(CalibrationError):
    """A calibration value is out of range or inconsistent (e.g. min >= mid)."""


class CalibrationFileError(CalibrationError):
    """A calibration file cannot be read, parsed, migrated or written."""


class DeepRacerFormatError(CalibrationFileError):
    """A DeepRacer `calibration.json` is malformed or holds values openracer refuses."""


class CarLinkError(CalibrationError):
    """The calibrator lost, or could not open, its link to the motor controller."""
