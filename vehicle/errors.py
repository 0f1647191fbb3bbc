"""Typed errors of the car runtime. One base class; every message names the thing, the
value and the likely fix. `exit_code` is what `racer` exits with when one escapes."""

from __future__ import annotations


class VehicleError(Exception):
    """Base of every error the car runtime raises on purpose."""

    exit_code = 2


class MetadataError(VehicleError):
    """A `model_metadata.json` (or the dict read from it) is malformed or out of range."""


class ObservationError(VehicleError):
    """A camera frame cannot be turned into the model's observation."""
