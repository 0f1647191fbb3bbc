"""The non-gym core as hardware-in-the-loop uses it: commands or physical actuator targets in,
camera frames and DeepRacer params/lap timing out."""

from __future__ import annotations

import math

import numpy as np
import pytest

from sim2real.battery import BatteryConfig
from sim2real.params import DOCUMENTED_KEYS, EpisodeProgress
from sim2real.pure_pursuit import PurePursuit
from sim2real.world import World, WorldConfig
from tracks import catalogue


def test_world_lap_timing_with_params():
    world = World(catalogue.resolve("reinvent_like"))
    world.place_on_centerline(0.0)
    laps = EpisodeProgress()
    laps.reset(world.lookup.position(*world.pose[:2]).ndist)
    laps.update(world.position().ndist, None)
    expert = PurePursuit(world)
    last = world.pose
    status = "in_progress"
    for _ in range(2000):
        steer, speed = expert.command()
        world.step(steer, speed)
        x, y, _ = world.pose
        laps.update(world.position().ndist, math.hypot(x - last[0], y - last[1]))
        last = world.pose
        status = laps.status(world.wheels_on_road())
        if status != "in_progress":
            break
    assert status == "lap_complete"
    params = world.params(laps, steer, speed)
    assert set(DOCUMENTED_KEYS) <= set(params)
    assert params["progress"] == 100.0 and params["steering_angle"] == steer
    lap_time = world.dynamics.state.time_s
    assert 5.0 < lap_time < 60.0
    frame = world.render()
    assert frame.shape == (120, 160) and frame.dtype == np.uint8


def test_physical_actuator_targets_drive_the_car():
    world = World(catalogue.resolve("beginner_oval"))
    world.place_on_centerline(0.0)
    x0, y0, th = world.pose
    for _ in range(15):  # one second at 0.5 m/s, wheels straight, from servo/ESC outputs
        world.dynamics.advance(0.0, 0.5, 1 / 15)
    x1, y1, _ = world.pose
    moved = math.hypot(x1 - x0, y1 - y0)
    assert 0.3 < moved < 0.5  # the speed lag eats a little of the 0.5 m
    assert world.dynamics.state.time_s == pytest.approx(1.0)


def test_battery_in_the_world_slows_a_drained_car():
    track = catalogue.resolve("beginner_oval")
    out = []
    for soc in (1.0, 0.1):
        world = World(track, WorldConfig(battery=BatteryConfig(initial_soc=soc)))
        world.place_on_centerline(0.0)
        for _ in range(30):
            world.step(0.0, 1.0)
        out.append(world.dynamics.state.speed_mps)
    assert out[1] < out[0]
