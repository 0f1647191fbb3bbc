"""What `racer export` and `racer models import` share on the command line: the parity
options (how many frames, which agreement, whether a failure may still be written), a
plain stage printer for runs without a progress bar, and the report-or-refusal ending
that prints the figures either way."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from typing import Any, Protocol


class ParityDefaults(Protocol):
    """The defaults the options show: an ExportConfig or an ImportConfig."""

    @property
    def representative_frames(self) -> int: ...
    @property
    def parity_frames(self) -> int: ...
    @property
    def min_agreement(self) -> float | None: ...


def add_parity_options(
    p: argparse.ArgumentParser, d: ParityDefaults, *, min_agreement_help: str
) -> None:
    """--representative-frames, --parity-frames, --min-agreement, --allow-parity-loss."""
    p.add_argument(
        "--representative-frames",
        type=int,
        default=d.representative_frames,
        metavar="N",
        help=f"simulator frames for int8 calibration (default {d.representative_frames})",
    )
    p.add_argument(
        "--parity-frames",
        type=int,
        default=d.parity_frames,
        metavar="N",
        help=f"held-out simulator frames for parity (default {d.parity_frames})",
    )
    p.add_argument(
        "--min-agreement",
        type=float,
        default=d.min_agreement,
        metavar="F",
        help=min_agreement_help,
    )
    p.add_argument(
        "--allow-parity-loss",
        action="store_true",
        help="write the model even when it fails the parity check",
    )


def print_stages(command: str) -> Callable[[str, int | None], Callable[[int], None]]:
    """A `stage(description, total)` callback that prints each stage's name on stderr."""

    def ignore(_n: int) -> None:
        pass

    def stage(description: str, _total: int | None) -> Callable[[int], None]:
        print(f"{command}: {description}", file=sys.stderr)
        return ignore

    return stage


def report(
    run: Callable[[], Any],
    refusal: type[Exception],
    *,
    as_json: bool,
    print_text: Callable[[dict[str, Any]], None],
) -> int:
    """Run `run()` and print its result's figures (JSON or text). A `refusal` (an error
    carrying the `.result` it refused) prints the same figures before it propagates, so a
    refused model's numbers are on screen above the one-line error."""
    try:
        result = run()
    except refusal as exc:
        refused = getattr(exc, "result", None)
        if refused is not None:
            _print(refused.to_json(), as_json, print_text)
        raise
    _print(result.to_json(), as_json, print_text)
    return 0


def _print(data: dict[str, Any], as_json: bool, print_text: Callable[[dict[str, Any]], None]):
    if as_json:
        print(json.dumps(data, indent=2, default=str))
    else:
        print_text(data)
