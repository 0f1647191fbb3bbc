"""What a running Textual app shows, as plain text, through public API only.

`App.export_screenshot()` (public) renders the screen to an SVG with Rich's
`Console.export_svg`: one `<text>` element per run of equally styled characters, its `x`
the column times the character width and its `clip-path` naming the row. Reading those
back gives the terminal's text, row by row, without Textual's private compositor.
"""

from __future__ import annotations

import html
import re
from typing import Any

from rich.cells import cell_len

_TEXT = re.compile(
    r'<text class="[^"]*" x="(?P<x>[\d.]+)" y="[\d.]+" textLength="[\d.]+" '
    r'clip-path="url\(#[\w-]*-line-(?P<row>\d+)\)">(?P<text>.*?)</text>'
)
_LINE_CLIP = re.compile(r'<clipPath id="[\w-]*-line-0">\s*<rect x="0" y="[\d.]+" width="([\d.]+)"')


def screen_text(app: Any) -> str:
    """The app's screen now: one line per terminal row, every row as wide as the screen."""
    svg = app.export_screenshot()
    width, height = app.size
    clip = _LINE_CLIP.search(svg)
    if clip is None:
        raise AssertionError("no row clip in Textual's SVG screenshot; has its format changed?")
    char_width = float(clip.group(1)) / width
    rows = [[" "] * width for _ in range(height)]
    for m in _TEXT.finditer(svg):
        row = int(m["row"])
        col = round(float(m["x"]) / char_width)
        for ch in html.unescape(m["text"]).replace("\xa0", " "):
            if row < height and col < width:
                rows[row][col] = ch
                for k in range(1, cell_len(ch)):  # a wide character covers the next cells
                    if col + k < width:
                        rows[row][col + k] = ""
            col += max(1, cell_len(ch))
    return "\n".join("".join(r) for r in rows)
