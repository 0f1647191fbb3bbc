"""The terminal camera view: a camera frame drawn with half-block characters in a Textual
widget (`FrameView`), two pixels per cell, scaled to the widget and keeping the frame's
aspect. Used by the `racer drive` console and the calibrator's camera screen.

Built for slow links: colours are quantised and runs of identical cells share one style
(`frame_text`), so a repaint over SSH stays small. Runs on the car: numpy, OpenCV, rich
and Textual only.
"""

from __future__ import annotations

from typing import Any

import cv2
import numpy as np
from rich.color import Color
from rich.style import Style
from rich.text import Text
from textual.widgets import Static


def frame_text(frame: np.ndarray, cols: int, rows: int, *, levels: int = 16) -> Text:
    """A camera frame as `rows` lines of `cols` half-block cells (two pixels per cell).

    Colours are quantised to `levels` steps per channel and runs of identical cells share
    one style, so a repaint over a slow SSH link stays small (flat areas of a track cost
    a few bytes per run instead of a colour escape per cell).
    """
    cols, rows = max(1, cols), max(1, rows)
    img = cv2.resize(frame, (cols, rows * 2), interpolation=cv2.INTER_AREA)
    if img.ndim == 2:
        img = np.repeat(img[:, :, None], 3, axis=2)
    else:
        img = img[:, :, 2::-1]  # BGR -> RGB
    step = 256 // levels
    img = (img // step) * step + step // 2
    text = Text(no_wrap=True, overflow="crop")
    for r in range(rows):
        top, bottom = img[2 * r].tolist(), img[2 * r + 1].tolist()
        c = 0
        while c < cols:
            t, b = top[c], bottom[c]
            run = 1
            while c + run < cols and top[c + run] == t and bottom[c + run] == b:
                run += 1
            text.append(
                "\u2580" * run,
                Style(color=Color.from_rgb(*t), bgcolor=Color.from_rgb(*b)),
            )
            c += run
        if r < rows - 1:
            text.append("\n")
    return text


class FrameView(Static):
    """A camera frame drawn with half blocks, scaled to the widget's size (keeping 4:3)."""

    def __init__(self, title: str = "", **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.title = title
        self.frame: np.ndarray | None = None

    def show(self, frame: np.ndarray | None) -> None:
        self.frame = frame
        self._draw()

    def on_resize(self) -> None:
        self._draw()

    def _draw(self) -> None:
        width, height = self.size.width, self.size.height - 1
        if self.frame is None or width < 4 or height < 2:
            self.update(Text(f"{self.title}\n(no camera frame yet)", style="dim"))
            return
        h, w = self.frame.shape[:2]
        cols = width
        rows = round(cols * h / w / 2)  # half blocks: a cell is two pixels tall
        if rows > height:
            rows = height
            cols = round(rows * 2 * w / h)
        body = frame_text(self.frame, cols, rows)
        out = Text(self.title, style="bold")
        out.append("\n")
        out.append_text(body)
        self.update(out)
