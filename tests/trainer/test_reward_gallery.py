"""The reward gallery: every example loads standalone, returns a finite reward in
DeepRacer's accepted range, and pays for what its docstring says it pays for."""

from __future__ import annotations

import ast
import importlib.util
import math

import pytest

from trainer import reward_gallery


def _load(name: str, source: str | None = None):
    example = reward_gallery.get(name)
    text = source if source is not None else example.path.read_text(encoding="utf-8")
    namespace: dict = {}
    exec(compile(text, str(example.path), "exec"), namespace)  # as DeepRacer loads it
    return namespace["reward_function"]


def _circle(n: int = 60, radius: float = 3.0) -> list[tuple[float, float]]:
    pts = [
        (radius * math.cos(2 * math.pi * k / n), radius * math.sin(2 * math.pi * k / n))
        for k in range(n)
    ]
    return pts + [pts[0]]


def _straight(n: int = 30) -> list[tuple[float, float]]:
    return [(0.3 * k, 0.0) for k in range(n)]


def _params(**over) -> dict:
    base = {
        "all_wheels_on_track": True,
        "is_offtrack": False,
        "x": 0.0,
        "y": 0.0,
        "heading": 0.0,
        "distance_from_center": 0.0,
        "is_left_of_center": False,
        "progress": 10.0,
        "steps": 5.0,
        "speed": 0.8,
        "steering_angle": 0.0,
        "track_width": 0.76,
        "track_length": 17.7,
        "waypoints": _straight(),
        "closest_waypoints": [3, 4],
        "is_reversed": False,
        "is_crashed": False,
    }
    base.update(over)
    return base


@pytest.mark.parametrize("name", reward_gallery.names())
def test_every_example_is_standalone_and_documented(name):
    example = reward_gallery.get(name)
    tree = ast.parse(example.path.read_text(encoding="utf-8"))
    assert ast.get_docstring(tree) and len(ast.get_docstring(tree)) > 200
    imports = [n for n in ast.walk(tree) if isinstance(n, ast.Import | ast.ImportFrom)]
    modules = {a.name for n in imports if isinstance(n, ast.Import) for a in n.names}
    modules |= {n.module for n in imports if isinstance(n, ast.ImportFrom)}
    assert modules <= {"math"}, modules  # standard library only: runs in the console too
    spec = importlib.util.spec_from_file_location(f"gallery_{name}", example.path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    assert callable(module.reward_function)


@pytest.mark.parametrize("name", reward_gallery.names())
@pytest.mark.parametrize(
    "over",
    [
        {},
        {"distance_from_center": 0.3},
        {"all_wheels_on_track": False},
        {"is_offtrack": True, "all_wheels_on_track": False},
        {"steering_angle": -30.0, "speed": 0.4, "heading": 170.0},
        {"waypoints": _circle(), "closest_waypoints": [59, 60], "x": 3.0, "y": 0.0},
    ],
)
def test_rewards_are_finite_and_in_deepracer_range(name, over):
    value = _load(name)(_params(**over))
    assert isinstance(value, float)
    assert math.isfinite(value) and -1e5 <= value <= 1e5


@pytest.mark.parametrize("name", reward_gallery.names())
def test_off_track_pays_the_floor(name):
    fn = _load(name)
    assert fn(_params(all_wheels_on_track=False, is_offtrack=True)) == pytest.approx(1e-3)
    assert fn(_params()) > 0.5


def test_centerline_prefers_the_centre():
    fn = _load("centerline")
    values = [fn(_params(distance_from_center=d)) for d in (0.0, 0.1, 0.3, 0.39)]
    assert values == sorted(values, reverse=True) and values[0] > values[-1]


def test_borders_is_flat_inside_and_floors_at_the_margin():
    fn = _load("borders")
    assert fn(_params(distance_from_center=0.0)) == fn(_params(distance_from_center=0.3)) == 1.0
    assert fn(_params(distance_from_center=0.36)) == pytest.approx(1e-3)


def test_no_zigzag_penalises_sharp_steering():
    fn = _load("no_zigzag")
    assert fn(_params(steering_angle=30.0)) == pytest.approx(0.8 * fn(_params()))
    assert fn(_params(steering_angle=-10.0)) == fn(_params())


def test_waypoint_heading_pays_for_pointing_along_the_track():
    fn = _load("waypoint_heading")
    aligned = fn(_params(heading=0.0))
    assert aligned == pytest.approx(1.0)
    assert fn(_params(heading=15.0)) == pytest.approx(0.5)
    assert fn(_params(heading=90.0)) == pytest.approx(1e-3)
    # on a counter-clockwise circle at (3, 0) the track runs towards +y
    circle = {"waypoints": _circle(), "closest_waypoints": [0, 1], "x": 3.0, "y": 0.0}
    assert fn(_params(heading=100.0, **circle)) > fn(_params(heading=0.0, **circle))


def test_speed_on_straights_pays_speed_on_straights_and_moderation_in_corners():
    fn = _load("speed_on_straights")
    assert fn(_params(speed=0.8)) > fn(_params(speed=0.4))
    tight = {"waypoints": _circle(n=12, radius=1.0), "closest_waypoints": [2, 3]}
    assert fn(_params(speed=0.48, **tight)) > fn(_params(speed=0.8, **tight))


def test_progress_speed_pays_for_a_shorter_lap_on_every_step():
    fn = _load("progress_speed")
    # 10 % of the lap in 10 steps (a 100-step lap) beats 10 % in 20 steps (200 steps) ...
    assert fn(_params(progress=10.0, steps=10.0)) > fn(_params(progress=10.0, steps=20.0))
    # ... at the target pace the progress term is 1.0 per step, the speed term on top.
    at_target = fn(_params(progress=50.0, steps=52.5, speed=0.0))
    assert at_target == pytest.approx(1.0)
    assert fn(_params(progress=50.0, steps=52.5, speed=4.0)) == pytest.approx(1.2)
    # finishing pays a bonus that grows as the lap gets shorter; off the track pays 1e-3
    assert fn(_params(progress=100.0, steps=90.0)) > fn(_params(progress=100.0, steps=150.0))
    assert fn(_params(is_offtrack=True, progress=90.0)) == pytest.approx(1e-3)


def test_render_sets_constants_and_refuses_unknown_ones():
    text = reward_gallery.render("speed_on_straights", TARGET_SPEED_MPS=1.5)
    assert "TARGET_SPEED_MPS = 1.5\n" in text
    fn = _load("speed_on_straights", text)
    assert fn(_params(speed=0.75)) == pytest.approx(0.5)
    with pytest.raises(KeyError, match="TARGET_SPEED"):
        reward_gallery.render("speed_on_straights", TARGET_SPEED=1.0)
    with pytest.raises(KeyError, match="centerline"):
        reward_gallery.get("nope")
