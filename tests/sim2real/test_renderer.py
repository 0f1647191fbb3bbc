"""Golden geometry of the rendered camera: lines where the track says, horizon where the
pitch says, frames through the shared preprocessing, batches equal to single frames."""

from __future__ import annotations

import math

import numpy as np
import pytest

from sim2real.camera import CameraConfig, pixel_geometry
from sim2real.renderer import CameraRenderer
from sim2real.scene import TrackScene
from sim2real.texture import TextureStyle
from sim2real.world import World
from tracks import catalogue

STYLE = TextureStyle(
    road_kind="plain",
    floor_kind="plain",
    road_bgr=(40, 40, 40),
    floor_bgr=(60, 140, 60),
    border_bgr=(255, 255, 255),
    centre_bgr=(0, 220, 255),
    dash_length_m=0.0,  # solid centre line: every sample lands on paint
    background_kind="plain",
    wall_bgr=(200, 100, 100),
)


@pytest.fixture(scope="module")
def scene():
    t = catalogue.resolve("beginner_oval")
    s = TrackScene(t.center, t.inner, t.outer)
    s.repaint(STYLE, np.random.default_rng(0))
    return t, s


def _pose(track, index):
    a, b = track.center[index], track.center[index + 1]
    return float(a[0]), float(a[1]), math.atan2(b[1] - a[1], b[0] - a[0])


@pytest.mark.parametrize("camera", [CameraConfig(), CameraConfig(model="fisheye", hfov_deg=120)])
def test_lines_appear_where_the_geometry_puts_them(scene, camera):
    track, s = scene
    r = CameraRenderer(s, camera)
    x, y, th = _pose(track, 2)
    img = r.render(x, y, th, color=True).astype(int)
    c, sn = math.cos(th), math.sin(th)
    checks = 0
    for poly, colour in (
        (track.center, STYLE.centre_bgr),
        (track.inner, STYLE.border_bgr),
        (track.outer, STYLE.border_bgr),
    ):
        for px, py in poly[:12]:
            dx, dy = px - x, py - y
            fwd, left = c * dx + sn * dy, -sn * dx + c * dy
            if not 0.25 < fwd < 1.5:
                continue
            u, v = camera.project(np.array([[fwd, left, 0.0]]))[0]
            if not (2 <= u < camera.width_px - 2 and 2 <= v < camera.height_px - 2):
                continue
            # within a pixel of the projection, a pixel nearer the paint's colour than the
            # road's or the floor's (thin far lines blend with their surroundings)
            win = img[int(v) - 1 : int(v) + 2, int(u) - 1 : int(u) + 2].reshape(-1, 3)
            pix = win[np.abs(win - np.array(colour)).sum(1).argmin()]
            d_line = np.abs(pix - np.array(colour)).sum()
            d_other = min(
                np.abs(pix - np.array(STYLE.road_bgr)).sum(),
                np.abs(pix - np.array(STYLE.floor_bgr)).sum(),
            )
            assert d_line < d_other, (fwd, left, pix, colour)
            checks += 1
    assert checks >= 4


def test_horizon_row_matches_pitch_and_fov(scene):
    track, s = scene
    cam = CameraConfig(pitch_deg=15.0, hfov_deg=62.2, max_ground_distance_m=100.0)
    geo = pixel_geometry(cam)
    row = cam.height_px / 2 - cam.focal_px * math.tan(math.radians(15.0))
    ground_rows = np.flatnonzero(geo.ground[:, cam.width_px // 2])
    assert abs(ground_rows[0] - row) <= 1.5
    # a point 1 m ahead on the ground projects where the ray-plane intersection says
    v = cam.project(np.array([[1.0, 0.0, 0.0]]))[0, 1]
    xy = geo.ground_xy_m[int(v), cam.width_px // 2]
    assert xy[0] == pytest.approx(1.0, abs=0.02)


def test_background_above_horizon_and_ground_below(scene):
    track, s = scene
    r = CameraRenderer(s, CameraConfig())
    img = r.render(*_pose(track, 2), color=True)
    assert np.abs(img[2, 80].astype(int) - STYLE.wall_bgr).max() < 30
    assert np.abs(img[-1, 5].astype(int) - STYLE.road_bgr).max() < 30


def test_batch_equals_single_frames(scene):
    track, s = scene
    for cam in (CameraConfig(), CameraConfig(model="fisheye", hfov_deg=110)):
        r = CameraRenderer(s, cam)
        poses = np.array([_pose(track, i) for i in (0, 5, 9)])
        batch = r.render_batch(poses)
        for i, p in enumerate(poses):
            assert np.array_equal(batch[i], r.render(*p))


def test_world_observation_uses_the_shared_preprocessing():
    world = World(catalogue.resolve("reinvent_like"))
    obs = world.observe()
    assert obs.shape == (120, 160, 1) and obs.dtype == np.uint8
    from vehicle.observation import preprocess

    assert np.array_equal(obs, preprocess(world.render()))
    # gray render equals the colour render through the same conversion, up to rounding
    gray_of_color = preprocess(world.render(color=True))
    assert np.abs(gray_of_color.astype(int) - obs.astype(int)).max() <= 2


def test_far_outside_the_track_shows_plain_floor(scene):
    track, s = scene
    r = CameraRenderer(s, CameraConfig())
    img = r.render(100.0, 100.0, 0.0)
    assert (img[r.ground_mask] == s.floor_gray).all()
