"""model_metadata.json as DeepRacer writes it: parsing, defaults, decoding, clear errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from vehicle.errors import MetadataError, MetadataWarning
from vehicle.metadata import (
    console_default_action_space,
    discrete_grid,
    load_metadata,
    parse_metadata,
)

# DeepRacer-for-Cloud's default discrete file (compat reference 3.1).
DRFC_DEFAULT = {
    "action_space": [
        {"steering_angle": -30, "speed": 0.6},
        {"steering_angle": -15, "speed": 0.6},
        {"steering_angle": 0, "speed": 0.6},
        {"steering_angle": 15, "speed": 0.6},
        {"steering_angle": 30, "speed": 0.6},
    ],
    "sensor": ["FRONT_FACING_CAMERA"],
    "neural_network": "DEEP_CONVOLUTIONAL_NETWORK_SHALLOW",
    "training_algorithm": "clipped_ppo",
    "action_space_type": "discrete",
    "version": "4",
}
DRFC_CONTINUOUS = {
    "action_space": {"speed": {"high": 2, "low": 1}, "steering_angle": {"high": 30, "low": -30}},
    "sensor": ["FRONT_FACING_CAMERA"],
    "neural_network": "DEEP_CONVOLUTIONAL_NETWORK_SHALLOW",
    "training_algorithm": "clipped_ppo",
    "action_space_type": "continuous",
    "version": "5",
}


def test_drfc_discrete_file_loads(tmp_path: Path) -> None:
    path = tmp_path / "model_metadata.json"
    path.write_text(json.dumps(DRFC_DEFAULT))
    meta = load_metadata(path)
    assert meta.action_space.kind == "discrete" and meta.action_space.n == 5
    assert meta.action_space.decode(0) == (-30.0, 0.6)
    assert meta.action_space.decode(4) == (30.0, 0.6)
    assert meta.version == "4" and meta.control_rate_hz == 15.0


def test_continuous_rescales_linearly_and_clips() -> None:
    space = parse_metadata(DRFC_CONTINUOUS).action_space
    assert space.kind == "continuous" and space.n == 2
    assert space.decode([-1.0, -1.0]) == (-30.0, 1.0)
    assert space.decode([0.0, 0.0]) == (0.0, 1.5)
    assert space.decode([1.0, 1.0]) == (30.0, 2.0)
    assert space.decode([5.0, -7.0]) == (30.0, 1.0)  # clipped to the box first


def test_defaults_for_missing_keys_are_deepracers() -> None:
    meta = parse_metadata({"action_space": DRFC_DEFAULT["action_space"]})
    assert meta.training_algorithm == "clipped_ppo"
    assert meta.neural_network == "DEEP_CONVOLUTIONAL_NETWORK_SHALLOW"
    assert meta.action_space.kind == "discrete"


def test_action_space_type_is_lowercased_and_trimmed() -> None:
    meta = parse_metadata({**DRFC_CONTINUOUS, "action_space_type": " Continuous "})
    assert meta.action_space.kind == "continuous"


def test_console_default_is_ten_actions() -> None:
    space = console_default_action_space()
    pairs = [(a.steer_deg, a.speed_mps) for a in space.actions]
    assert len(pairs) == 10
    assert set(pairs) == {(s, v) for s in (-30.0, -15.0, 0.0, 15.0, 30.0) for v in (0.4, 0.8)}
    assert space.max_steer_deg == 30.0 and space.max_speed_mps == 0.8


def test_round_trip_keeps_deepracer_keys_and_adds_ours() -> None:
    meta = parse_metadata(DRFC_DEFAULT)
    data = meta.to_json()
    assert data["action_space"][2] == {"steering_angle": 0.0, "speed": 0.6, "index": 2}
    assert data["openracer"]["input_shape"] == [120, 160, 1]
    assert parse_metadata(json.loads(json.dumps(data))) == meta


def test_grid_with_one_steering_level_is_straight() -> None:
    space = discrete_grid(max_steer_deg=30, steer_levels=1, max_speed_mps=1.0, speed_levels=1)
    assert space.decode(0) == (0.0, 1.0)


@pytest.mark.parametrize(
    "data, needle",
    [
        ({}, "'action_space' is required"),
        ({"action_space": []}, "non-empty list"),
        ({"action_space": [{"steering_angle": 45, "speed": 1}]}, "steering_angle 45.0 is beyond"),
        ({"action_space": [{"steering_angle": 0, "speed": 0.05}]}, "speed 0.05 m/s is outside"),
        ({"action_space": [{"steering_angle": "x", "speed": 1}]}, "is not a number"),
        ({**DRFC_DEFAULT, "action_space_type": "mixed"}, "'mixed' is not"),
        ({**DRFC_DEFAULT, "sensor": ["FRONT_FACING_CAMERA", "LIDAR"]}, "one front-facing camera"),
        (
            {
                **DRFC_CONTINUOUS,
                "action_space": {
                    "speed": {"low": 2, "high": 1},
                    "steering_angle": {"low": -1, "high": 1},
                },
            },
            "low 2.0 must be below high 1.0",
        ),
        ({**DRFC_DEFAULT, "training_algorithm": "sac"}, "needs a continuous"),
    ],
)
def test_bad_metadata_names_the_value(data: dict, needle: str) -> None:
    with pytest.raises(MetadataError) as info:
        parse_metadata(data, source="m.json")
    assert needle in str(info.value) and str(info.value).startswith("m.json")


DATA = Path(__file__).parent / "data"


def test_keys_deepracer_ignores_are_accepted_with_one_warning_naming_them() -> None:
    path = DATA / "console_model_metadata.json"
    with pytest.warns(MetadataWarning) as record:
        meta = load_metadata(path)
    assert len(record) == 1
    message = str(record[0].message)
    assert message.startswith(str(path)) and "\n" not in message
    assert "preprocess_type, regional_parameters" in message
    assert meta.action_space.decode(2) == (0.0, 1.2)
    assert "preprocess_type" not in meta.to_json()  # not written back: DeepRacer ignores it


def test_speeds_above_four_are_accepted_with_a_warning_and_kept_as_declared() -> None:
    path = DATA / "fast_model_metadata.json"
    with pytest.warns(MetadataWarning, match=r"speed 5 m/s is above DeepRacer's 4 m/s"):
        meta = load_metadata(path)
    space = meta.action_space
    assert space.decode(2) == (0.0, 5.0)  # the car maps the declared speed
    assert space.max_speed_mps == 5.0
    cont = {**DRFC_CONTINUOUS, "action_space": {**DRFC_CONTINUOUS["action_space"]}}
    cont["action_space"]["speed"] = {"low": 1, "high": 4.5}
    with pytest.warns(MetadataWarning, match=r"speed.high 4.5 m/s"):
        assert parse_metadata(cont).action_space.speed_range_mps == (1.0, 4.5)


def test_new_action_spaces_stay_within_four_mps() -> None:
    with pytest.raises(MetadataError, match="speed 5.0 m/s is outside"):
        discrete_grid(max_steer_deg=30, steer_levels=3, max_speed_mps=5, speed_levels=1)


def test_bad_json_names_line(tmp_path: Path) -> None:
    path = tmp_path / "model_metadata.json"
    path.write_text('{"action_space": [\n  {"steering_angle": 0,}\n]}')
    with pytest.raises(MetadataError, match="line 2"):
        load_metadata(path)


def test_out_of_range_index_is_an_error() -> None:
    with pytest.raises(MetadataError, match="index 5 is outside"):
        parse_metadata(DRFC_DEFAULT).action_space.decode(5)


def test_continuous_ranges_without_their_type_say_how_to_declare_it() -> None:
    raw = {k: v for k, v in DRFC_CONTINUOUS.items() if k != "action_space_type"}
    with pytest.raises(MetadataError, match='add "action_space_type": "continuous"'):
        parse_metadata(raw)
