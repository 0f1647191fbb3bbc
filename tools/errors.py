"""Typed errors of the `racer` command line's own helpers (flashing, firmware, the wizard).

One base class with `exit_code = 2`, so `racer` prints one line naming the thing, the bad
value and the fix, instead of a traceback. The analysis tools have theirs in
`tools/analysis/errors.py`.
"""

from __future__ import annotations


class ToolError(Exception):
    """Base of every error the command-line helpers raise on purpose."""

    exit_code = 2


class FlashError(ToolError):
    """The bundle could not be delivered, or the car refused it."""


class FirmwareError(ToolError):
    """The firmware cannot be built or flashed, or the board runs another protocol."""


class WizardError(ToolError):
    """A `racer new` flag or answer cannot be used (names the value and the fix)."""
