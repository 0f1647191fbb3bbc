"""Typed errors of the simulator. One base class (`SimError`, `exit_code = 2`); every
message names the thing, the bad value, and the likely fix."""

from __future__ import annotations


class SimError(Exception):
    """Base of every error the simulator raises on purpose."""

    exit_code = 2


class SimConfigError(SimError):
    """A simulator configuration value (dynamics, camera, randomization knob) is invalid."""


class TrackInputError(SimError):
    """The `track` argument cannot be turned into a track (unknown name, bad file, empty list)."""


class RewardFunctionError(SimError):
    """A user reward function cannot be loaded, or misbehaves on sample or live params."""


class ActionError(SimError):
    """An action handed to the environment is outside its action space."""


class SimtraceError(SimError):
    """A simtrace log folder or file cannot be written."""
