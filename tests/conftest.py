"""Guards every test shares."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from vehicle.link import Link


@pytest.fixture(autouse=True)
def no_link_left_open(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Close every `Link` a test opened and left open (one whose assertion failed before
    its `close()`), and make that test an error. A link left open keeps reconnecting to
    its port's path, and pty numbers are reused: it would take the port of the next
    simulated board, in this process or another, and fail tests that have nothing to do
    with it. Runs after the test's own fixtures have closed theirs."""
    opened: list[Link] = []
    real_open = Link.open

    def open_and_track(self: Link) -> Link:
        opened.append(self)
        return real_open(self)

    monkeypatch.setattr(Link, "open", open_and_track)
    yield
    left = [link.config.port for link in opened if link._opened and not link._closed]
    for link in opened:
        link.close()
    assert not left, f"the test left links open on {left}: close them (a with block)"
