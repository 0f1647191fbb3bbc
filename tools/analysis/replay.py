"""MP4 replays: saved car frames with the model's actions drawn on them, and a lap drawn
over the top-down track picture.

Written with imageio's ffmpeg writer (H.264, yuv420p, so browsers and phones play it),
falling back to OpenCV's `mp4v` VideoWriter if imageio-ffmpeg is missing. Frames are
written to a temp file and renamed, so a half-written video never sits at the final path.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import cv2
import numpy as np

from tools.analysis.errors import AnalysisError
from vehicle.files import atomic_path


def _even(img: np.ndarray) -> np.ndarray:
    h, w = img.shape[:2]
    return img[: h - h % 2, : w - w % 2]


def write_mp4(frames_bgr: Iterable[np.ndarray], path: Path, fps: float) -> dict:
    """Write BGR uint8 frames as an MP4; returns {'path', 'frames', 'fps', 'codec'}."""
    path = Path(path)
    with atomic_path(path, suffix=".mp4") as tmp:
        count, codec = _encode_mp4(frames_bgr, tmp, fps)
        if count == 0:
            raise AnalysisError(f"{path}: no frames to write; nothing was recorded")
    return {"path": str(path), "frames": count, "fps": fps, "codec": codec}


def _encode_mp4(frames_bgr: Iterable[np.ndarray], tmp: Path, fps: float) -> tuple[int, str]:
    """Encode into `tmp` with imageio's H.264, else OpenCV's mp4v; (frames, codec)."""
    count = 0
    try:
        import imageio.v2 as imageio

        writer = imageio.get_writer(
            str(tmp),
            fps=fps,
            codec="libx264",
            pixelformat="yuv420p",
            macro_block_size=1,
            ffmpeg_log_level="error",
        )
        try:
            for frame in frames_bgr:
                writer.append_data(cv2.cvtColor(_even(frame), cv2.COLOR_BGR2RGB))
                count += 1
        finally:
            writer.close()
        return count, "h264"
    except ImportError:
        pass
    writer_cv = None
    for frame in frames_bgr:
        frame = _even(frame)
        if writer_cv is None:
            h, w = frame.shape[:2]
            fourcc = cv2.VideoWriter_fourcc(*"mp4v")  # type: ignore[attr-defined]
            writer_cv = cv2.VideoWriter(str(tmp), fourcc, fps, (w, h))
        writer_cv.write(frame)
        count += 1
    if writer_cv is not None:
        writer_cv.release()
    return count, "mp4v"


def overlay_action(
    frame: np.ndarray,
    steer_deg: float | None,
    speed_mps: float | None,
    max_steer_deg: float,
    max_speed_mps: float,
    text: str,
    scale: int = 4,
) -> np.ndarray:
    """A car frame (grayscale or BGR), enlarged `scale` times, with a steering bar
    (centre = straight, left = positive), a speed bar and a caption drawn on it."""
    img = frame if frame.ndim == 3 else cv2.cvtColor(frame, cv2.COLOR_GRAY2BGR)
    img = cv2.resize(
        img, (img.shape[1] * scale, img.shape[0] * scale), interpolation=cv2.INTER_NEAREST
    )
    h, w = img.shape[:2]
    band = np.zeros((64, w, 3), np.uint8)
    cx, y = w // 2, 22
    cv2.line(band, (20, y), (w - 20, y), (90, 90, 90), 6)
    if steer_deg is not None and np.isfinite(steer_deg):
        frac = float(np.clip(steer_deg / max(max_steer_deg, 1e-6), -1, 1))
        end = int(cx - frac * (w / 2 - 20))  # positive steering = left
        cv2.line(band, (cx, y), (end, y), (0, 200, 255), 6)
    cv2.line(band, (cx, y - 10), (cx, y + 10), (255, 255, 255), 2)
    if speed_mps is not None and np.isfinite(speed_mps):
        frac = float(np.clip(speed_mps / max(max_speed_mps, 1e-6), 0, 1))
        cv2.rectangle(band, (20, 40), (20 + int(frac * (w - 40)), 52), (80, 200, 80), -1)
    cv2.rectangle(band, (20, 40), (w - 20, 52), (120, 120, 120), 1)
    out = np.vstack([img, band])
    (tw, th), _ = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, 0.55, 1)
    cv2.rectangle(out, (4, 4), (12 + tw, 12 + th), (0, 0, 0), -1)
    cv2.putText(
        out, text, (8, 8 + th), cv2.FONT_HERSHEY_SIMPLEX, 0.55, (255, 255, 255), 1, cv2.LINE_AA
    )
    return out


def lap_frames(
    track,
    xs: np.ndarray,
    ys: np.ndarray,
    ts: np.ndarray,
    speeds: np.ndarray,
    title: str,
    racing_line=None,
    max_size_px: int = 720,
    trail: int = 45,
) -> Iterable[np.ndarray]:
    """Frames of a lap over the top-down track picture (tracks.render): the car as a dot
    with a fading trail, the lap clock and speed in the corner. One frame per step."""
    from tracks.render import _View, render

    base = render(track, racing_line=racing_line, max_size_px=max_size_px, info=title)
    # the same world->pixel transform render() used: its margin (checked through the
    # width) and whatever header it drew above the track (the rest of the height), so a
    # change in tracks.render cannot silently misplace the car
    view = _View(track, max_size_px, margin_px=40, header_px=0)
    header = base.shape[0] - view.height
    if base.shape[1] != view.width or header < 0:
        raise AnalysisError(
            f"tracks.render drew {base.shape[1]}x{base.shape[0]} px, which does not match "
            f"its {view.width} px wide track view; update tools/analysis/replay.py"
        )
    view = _View(track, max_size_px, margin_px=40, header_px=header)
    pts = view.px(np.c_[xs, ys]) >> 4  # _View returns fixed point with 4 fractional bits
    t0 = float(ts[0])
    for i in range(len(xs)):
        img = base.copy()
        lo = max(0, i - trail)
        for k in range(lo, i):
            a = (k - lo + 1) / max(1, i - lo)
            colour = (int(60 + 195 * a), int(60 + 140 * a), 255)
            cv2.line(
                img,
                tuple(int(v) for v in pts[k]),
                tuple(int(v) for v in pts[k + 1]),
                colour,
                3,
                cv2.LINE_AA,
            )
        cv2.circle(img, tuple(int(v) for v in pts[i]), 9, (0, 0, 255), -1, cv2.LINE_AA)
        cv2.circle(img, tuple(int(v) for v in pts[i]), 9, (255, 255, 255), 2, cv2.LINE_AA)
        label = f"{float(ts[i]) - t0:6.2f} s   {float(speeds[i]):.2f} m/s"
        cv2.putText(
            img,
            label,
            (img.shape[1] - 300, 36),
            cv2.FONT_HERSHEY_SIMPLEX,
            0.8,
            (255, 255, 255),
            2,
            cv2.LINE_AA,
        )
        yield img
