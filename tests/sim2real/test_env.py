"""The Race-v0 environment: Gymnasium contract, vector envs, DeepRacer episode rules,
randomization determinism, track sources, simtrace logs read by deepracer-utils."""

from __future__ import annotations

import json
import math
import warnings

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env

import sim2real  # noqa: F401
from sim2real.errors import ActionError, SimConfigError
from sim2real.pure_pursuit import PurePursuit
from tracks import catalogue

CONTINUOUS = {
    "action_space": {
        "steering_angle": {"low": -30, "high": 30},
        "speed": {"low": 0.5, "high": 2.0},
    },
    "action_space_type": "continuous",
}


@pytest.mark.parametrize(
    "preset", ["none", "standard", pytest.param("heavy", marks=pytest.mark.slow)]
)
def test_check_env_passes(preset):
    env = gym.make("openracer/Race-v0", randomize=preset, render_mode="rgb_array")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        check_env(env.unwrapped)
    assert env.observation_space == gym.spaces.Box(0, 255, (120, 160, 1), np.uint8)
    env.close()


def test_spaces_follow_model_metadata():
    assert gym.make("openracer/Race-v0").action_space == gym.spaces.Discrete(10)
    env = gym.make("openracer/Race-v0", action_space=CONTINUOUS)
    assert env.action_space == gym.spaces.Box(-1.0, 1.0, (2,), np.float32)
    env.reset(seed=0)
    _, _, _, _, info = env.step(np.array([1.0, -1.0], np.float32))
    assert info["params"]["steering_angle"] == 30.0 and info["params"]["speed"] == 0.5
    bad = gym.make("openracer/Race-v0").unwrapped
    bad.reset(seed=0)
    with pytest.raises(ActionError):
        bad.step(10)
    with pytest.raises(ActionError):
        bad.step("left")


def test_actions_above_four_mps_drive_at_four_as_in_deepracer():
    from pathlib import Path

    from vehicle.errors import MetadataWarning

    fast = Path(__file__).parents[1] / "vehicle" / "data" / "fast_model_metadata.json"
    with pytest.warns(MetadataWarning, match="the simulator drives it at 4 m/s"):
        env = gym.make("openracer/Race-v0", action_space=str(fast), randomize="none").unwrapped
    env.reset(seed=0)
    for _ in range(40):
        _, _, terminated, _, info = env.step(2)  # declared 5.0 m/s, straight
        assert info["params"]["speed"] == 5.0  # params carry the commanded speed
        assert env.world.dynamics.applied_speed_mps == 4.0
        if terminated:
            break
    assert env.world.dynamics.state.speed_mps <= 4.0 + 1e-9


@pytest.mark.parametrize("preset", ["none", "standard"])
def test_same_seed_same_frames(preset):
    def run():
        env = gym.make("openracer/Race-v0", randomize=preset)
        frames = []
        for episode in range(3):
            obs, _ = env.reset(seed=42 if episode == 0 else None)
            frames.append(obs)
            for _ in range(5):
                obs, *_ = env.step(5)
                frames.append(obs)
        return np.stack(frames)

    a, b = run(), run()
    assert np.array_equal(a, b)
    if preset == "standard":
        # randomization really changes the pictures between episodes
        assert not np.array_equal(a[0], a[6])


def test_round_robin_and_evaluation_starts():
    env = gym.make("openracer/Race-v0").unwrapped
    starts = []
    for i in range(4):
        _, info = env.reset(seed=0 if i == 0 else None)
        starts.append(env.progress.start_ndist)
    assert np.allclose(np.diff(starts), 0.05)
    ev = gym.make("openracer/Race-v0", training=False).unwrapped
    for _ in range(3):
        ev.reset()
        assert ev.progress.start_ndist == pytest.approx(0.0)
    _, info = ev.reset(options={"start_progress": 0.5})
    assert ev.progress.start_ndist == pytest.approx(0.5)
    with pytest.raises(SimConfigError):
        ev.reset(options={"teleport": 1})


def test_pose_option_places_the_model_origin():
    env = gym.make("openracer/Race-v0").unwrapped
    _, info = env.reset(options={"pose": {"x": 1.0, "y": 2.0, "heading_deg": 90.0}})
    assert info["params"]["x"] == pytest.approx(1.0)
    assert info["params"]["y"] == pytest.approx(2.14)
    assert info["params"]["heading"] == pytest.approx(90.0)


def test_track_list_and_generator():
    names = ["reinvent_like", "hairpin"]
    env = gym.make("openracer/Race-v0", track=names).unwrapped
    seen = set()
    for i in range(8):
        env.reset(seed=3 if i == 0 else None)
        seen.add(env.world.track.name)
    assert seen == set(names)

    def gen():
        while True:
            yield "chicane"
            yield catalogue.resolve("technical")

    env = gym.make("openracer/Race-v0", track=gen()).unwrapped
    got = []
    for _ in range(3):
        env.reset()
        got.append(env.world.track.name)
    assert got[1:] == ["technical", "chicane"] or got == ["chicane", "technical", "chicane"]


@pytest.mark.slow
@pytest.mark.parametrize(
    "mode", [gym.vector.AutoresetMode.NEXT_STEP, gym.vector.AutoresetMode.SAME_STEP]
)
def test_async_vector_env_autoreset(mode):
    envs = gym.vector.AsyncVectorEnv(
        [lambda: gym.make("openracer/Race-v0", randomize="light")] * 2, autoreset_mode=mode
    )
    try:
        obs, infos = envs.reset(seed=1)
        assert obs.shape == (2, 120, 160, 1) and obs.dtype == np.uint8
        ends = 0
        for _ in range(150):
            # hard left at speed leaves the road within a few dozen steps
            obs, reward, term, trunc, infos = envs.step(np.array([8, 9]))
            assert "params" in infos and "episode_status" in infos
            if term.any():
                ends += 1
                i = int(np.flatnonzero(term)[0])
                if mode == gym.vector.AutoresetMode.SAME_STEP:
                    # the returned step is already the new episode's prepare step; the
                    # ending step's info and observation come separately
                    assert infos["episode_status"][i] == "prepare"
                    final = infos["final_info"]["episode_status"][i]
                    assert infos["final_obs"][i].shape == (120, 160, 1)
                else:
                    final = infos["episode_status"][i]
                assert final in ("off_track", "reversed", "lap_complete")
        assert ends >= 2
    finally:
        envs.close()


def test_pure_pursuit_expert_laps_through_the_env():
    env = gym.make(
        "openracer/Race-v0", action_space=CONTINUOUS, training=False, randomize="light"
    ).unwrapped
    env.reset(seed=5)
    expert = PurePursuit(env.world)
    for _ in range(2000):
        _, _, term, trunc, info = env.step(expert.action_for(env.action_def))
        if term or trunc:
            break
    assert info["episode_status"] == "lap_complete"
    assert info["params"]["progress"] == 100.0


@pytest.mark.slow
def test_simtrace_layout_is_read_by_deepracer_utils(tmp_path):
    pytest.importorskip("deepracer")
    from deepracer.logs import DeepRacerLog

    model = tmp_path / "model"
    env = gym.make("openracer/Race-v0", simtrace_dir=model, worker_index=1, num_workers=2)
    u = env.unwrapped
    for it in range(2):
        u.set_simtrace_iteration(it)
        for _ in range(2):
            env.reset()
            for _ in range(400):
                _, _, term, trunc, _ = env.step(8)
                if term or trunc:
                    break
    env.close()
    csv = model / "training-simtrace" / "0-iteration.csv"
    lines = csv.read_text().splitlines()
    assert lines[0].split(",") == list(sim2real.simtrace.COLUMNS)
    first = lines[1].split(",")
    assert first[0] == "1" and first[1] == "1" and first[15] == "prepare"
    (model / "model").mkdir()
    (model / "model" / "model_metadata.json").write_text(
        json.dumps({"action_space": [], "sensor": ["FRONT_FACING_CAMERA"]})
    )
    (model / "ip").mkdir()
    (model / "ip" / "hyperparameters.json").write_text(json.dumps({"batch_size": 64}))
    log = DeepRacerLog(model_folder=str(model))
    log.load_training_trace()
    df = log.dataframe()
    assert set(df["episode"]) == {1, 3, 5, 7}
    assert set(df["iteration"]) == {0, 1}
    assert df["episode_status"].iloc[0] == "prepare"
    assert math.isclose(df["track_len"].iloc[0], 17.7, abs_tol=0.01)
    assert {"x", "y", "steering_angle", "speed", "on_track"} <= set(df.columns)


def test_rgb_observation_and_render():
    env = gym.make("openracer/Race-v0", observation="rgb", render_mode="rgb_array")
    obs, _ = env.reset(seed=0)
    assert obs.shape == (120, 160, 3)
    assert env.render().shape == (240, 320, 3)


def test_reverse_direction_flips_waypoints_and_sides():
    fwd = gym.make("openracer/Race-v0").unwrapped
    rev = gym.make("openracer/Race-v0", reverse_direction=True).unwrapped
    _, a = fwd.reset(seed=0)
    _, b = rev.reset(seed=0)
    assert b["params"]["is_reversed"] is True and a["params"]["is_reversed"] is False
    assert b["params"]["waypoints"] == a["params"]["waypoints"][::-1]
    # same spot, same offset to the car's left: left of centre in both directions
    for env in (fwd, rev):
        x, y, th = env.world.centerline_pose(0.25)
        ox, oy = x - math.sin(th) * 0.2, y + math.cos(th) * 0.2
        _, info = env.reset(options={"pose": {"x": ox, "y": oy, "heading_deg": math.degrees(th)}})
        assert info["params"]["is_left_of_center"] is True
    expert = PurePursuit(rev.world)
    rev.reset(seed=1)
    for _ in range(1500):
        _, _, term, trunc, info = rev.step(expert.action_for(rev.action_def))
        if term or trunc:
            break
    assert info["episode_status"] == "lap_complete"


def test_simtrace_episode_numbers_can_be_resumed(tmp_path):
    env = gym.make("openracer/Race-v0", simtrace_dir=tmp_path).unwrapped
    env.set_simtrace_episode(40)
    env.reset(seed=0)
    env.step(8)
    env.reset()
    env.close()
    rows = (tmp_path / "training-simtrace" / "0-iteration.csv").read_text().splitlines()[1:]
    assert {r.split(",")[0] for r in rows} == {"40", "41"}


def test_continue_lap_counts_a_second_lap():
    env = gym.make("openracer/Race-v0", action_space=CONTINUOUS, training=False).unwrapped
    env.reset(seed=0)
    expert = PurePursuit(env.world)
    laps, times = 0, []
    for _ in range(4000):
        _, _, term, trunc, info = env.step(expert.action_for(env.action_def))
        if info["episode_status"] == "lap_complete":
            laps += 1
            times.append(info["params"]["sim_time"])
            if laps == 2:
                break
            env.continue_lap()
        elif term or trunc:
            break
    assert laps == 2
    assert times[1] - times[0] == pytest.approx(times[0], rel=0.1)
    env.reset()
    with pytest.raises(SimConfigError):
        env.continue_lap()


def test_action_space_forms(tmp_path):
    from sim2real.env import resolve_action_space

    actions = [{"steering_angle": -20, "speed": 1.0}, {"steering_angle": 20, "speed": 1.0}]
    assert resolve_action_space(actions).n == 2
    assert resolve_action_space({"action_space": actions}).n == 2
    cont = resolve_action_space(CONTINUOUS["action_space"])
    assert cont.kind == "continuous" and cont.speed_range_mps == (0.5, 2.0)
    path = tmp_path / "model_metadata.json"
    path.write_text(json.dumps(CONTINUOUS))
    env = gym.make("openracer/Race-v0", action_space=str(path))
    assert env.action_space.shape == (2,)
    from vehicle.errors import MetadataError

    with pytest.raises(MetadataError):
        resolve_action_space([{"steering_angle": 45, "speed": 1.0}])


def test_evaluation_simtrace_layout(tmp_path):
    env = gym.make("openracer/Race-v0", simtrace_dir=tmp_path, training=False)
    env.reset(seed=0)
    for _ in range(3):
        env.step(5)
    env.close()
    files = list(tmp_path.glob("evaluation-*/evaluation-simtrace/0-iteration.csv"))
    assert len(files) == 1
    assert len(files[0].parent.parent.name) == len("evaluation-") + 14
    rows = files[0].read_text().splitlines()
    assert len(rows) == 1 + 4 and rows[1].split(",")[15] == "prepare"
