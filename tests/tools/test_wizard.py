"""`racer new`: the wizard writes a model folder `racer train` accepts, driven by flags,
by piped answers, and once for real in a pseudo-terminal."""

from __future__ import annotations

import io
import json
import os
import pty
import select
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from tests.analysis.fixtures import stadium_track
from tools.cli import main as racer
from trainer.config import config_from_json, load_hyperparameters
from vehicle.metadata import load_metadata

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture()
def track_file(tmp_path):
    path = tmp_path / "stadium.npy"
    np.save(path, stadium_track())
    return path


def _load_reward(path: Path):
    ns: dict = {}
    exec(compile(path.read_text(), str(path), "exec"), ns)
    return ns["reward_function"]


def test_flags_and_yes_write_a_complete_folder(tmp_path, track_file, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    argv = [
        "new",
        "fast-one",
        "--track",
        str(track_file),
        "--steering-levels",
        "7",
        "--max-steer",
        "25",
        "--speed-levels",
        "3",
        "--max-speed",
        "1.5",
        "--reward",
        "speed_on_straights",
        "--randomize",
        "heavy",
        "--minutes",
        "30",
        "--hyper",
        "lr=0.0001",
        "--hyper",
        "batch_size=128",
        "--yes",
    ]
    assert racer(argv) == 0
    out = capsys.readouterr().out
    folder = tmp_path / "fast-one"
    md = load_metadata(folder / "model_metadata.json")
    assert md.action_space.n == 21 and md.action_space.max_steer_deg == 25
    assert md.action_space.max_speed_mps == pytest.approx(1.5)
    hp = load_hyperparameters(folder / "hyperparameters.json")
    assert hp.lr == 0.0001 and hp.batch_size == 128 and hp.discount_factor == 0.999
    cfg = config_from_json(json.loads((folder / "train.json").read_text()), "train.json")
    assert cfg.minutes == 30 and cfg.randomize == "heavy"
    assert Path(cfg.reward).resolve() == (folder / "reward_function.py").resolve()
    assert Path(cfg.track[0]).resolve() == (folder / "track.npy").resolve()
    assert "TARGET_SPEED_MPS = 1.5" in (folder / "reward_function.py").read_text()
    assert callable(_load_reward(folder / "reward_function.py"))
    assert (folder / "track.png").read_bytes()[:4] == b"\x89PNG"
    assert np.array_equal(np.load(folder / "track.npy"), stadium_track())
    # the exact next command is printed, and uses only `racer train` flags of the spec
    command = [line for line in out.splitlines() if line.startswith("racer train")]
    assert command == [
        "racer train --track fast-one/track.npy --reward fast-one/reward_function.py "
        "--metadata fast-one/model_metadata.json --hyperparameters fast-one/hyperparameters.json "
        "--minutes 30 --randomize heavy --out fast-one/run"
    ]
    assert "█" in out  # the terminal preview of the track


@pytest.mark.parametrize(
    "extra, message",
    [
        (["--max-speed", "9"], "outside DeepRacer"),
        (["--reward", "nope"], "no reward example"),
        (["--hyper", "lr=5"], "lr"),
        (["--hyper", "banana=1"], "unknown key"),
        (["--steering-levels", "0"], "must be >= 1"),
    ],
)
def test_bad_choices_are_one_line_errors(tmp_path, track_file, capsys, extra, message):
    code = racer(["new", str(tmp_path / "x"), "--track", str(track_file), "--yes", *extra])
    err = capsys.readouterr().err
    assert code == 2 and message in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "x").exists()


def test_existing_folder_is_refused_without_force(tmp_path, track_file, capsys):
    folder = tmp_path / "m"
    folder.mkdir()
    (folder / "keep.txt").write_text("mine")
    assert racer(["new", str(folder), "--track", str(track_file), "--yes"]) == 2
    assert "--force" in capsys.readouterr().err
    assert racer(["new", str(folder), "--track", str(track_file), "--yes", "--force"]) == 0
    assert (folder / "keep.txt").read_text() == "mine"


def test_piped_answers_drive_the_prompts(tmp_path, track_file, monkeypatch):
    from rich.console import Console

    from tools.wizard import ask
    from trainer.model_folder import ModelChoices

    answers = (
        "\n".join(
            [
                "",  # recipe: the default, custom
                str(track_file),
                "discrete",
                "20",
                "3",
                "1.2",
                "2",
                "no_zigzag",
                "n",
                "128",
                "",
                "",
                "",
                "",
                "",
                "huber",
                "light",
                "5",
            ]
        )
        + "\n"
    )
    monkeypatch.setattr(sys, "stdin", io.StringIO(answers))
    console = Console(file=io.StringIO(), width=120)
    c = ask(ModelChoices(name=str(tmp_path / "p")), set(), console)
    assert (c.track, c.max_steer_deg, c.steering_levels, c.max_speed_mps, c.speed_levels) == (
        str(track_file),
        20.0,
        3,
        1.2,
        2,
    )
    assert c.reward == "no_zigzag" and c.randomize == "light" and c.minutes == 5
    assert c.hyperparameters == {"batch_size": 128, "loss_type": "huber"}


@pytest.mark.slow
def test_wizard_in_a_real_terminal(tmp_path, track_file):
    """Answer the prompts for real through a pseudo-terminal, as a user would."""
    env = dict(os.environ, COLUMNS="110", LINES="50", TERM="xterm-256color")
    pid, fd = pty.fork()
    if pid == 0:  # child: the racer command on the pty
        os.chdir(tmp_path)
        os.execve(
            sys.executable,
            [sys.executable, "-m", "tools.cli", "new", "ptymodel"],
            {**env, "PYTHONPATH": str(REPO)},
        )
    script = [
        ("Recipe", "\r"),
        ("Track", f"{track_file}\r"),
        ("Action space", "\r"),
        ("Maximum steering", "\r"),
        ("Steering angle granularity", "3\r"),
        ("Maximum speed", "1.0\r"),
        ("Speed granularity", "\r"),
        ("Reward", "waypoint_heading\r"),
        ("default hyperparameters", "y\r"),
        ("randomization", "none\r"),
        ("time budget", "2\r"),
    ]
    seen = b""
    deadline = time.monotonic() + 120
    try:
        for prompt, answer in script:
            while prompt.encode() not in seen:
                assert time.monotonic() < deadline, seen.decode(errors="replace")[-2000:]
                ready, _, _ = select.select([fd], [], [], 1.0)
                if ready:
                    seen += os.read(fd, 65536)
            seen = seen[seen.index(prompt.encode()) + len(prompt) :]
            os.write(fd, answer.encode())
        rest = b""
        while time.monotonic() < deadline:
            ready, _, _ = select.select([fd], [], [], 1.0)
            if ready:
                try:
                    chunk = os.read(fd, 65536)
                except OSError:
                    break
                if not chunk:
                    break
                rest += chunk
    finally:
        _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0, rest.decode(errors="replace")
    assert b"racer train --track ptymodel/track.npy" in rest
    md = load_metadata(tmp_path / "ptymodel" / "model_metadata.json")
    assert md.action_space.n == 6 and md.action_space.max_speed_mps == 1.0
    cfg = json.loads((tmp_path / "ptymodel" / "train.json").read_text())
    assert cfg["randomize"] == "none" and cfg["minutes"] == 2


def test_list_rewards(capsys):
    assert racer(["new", "--list-rewards"]) == 0
    out = capsys.readouterr().out
    for name in ("centerline", "borders", "no_zigzag", "waypoint_heading", "speed_on_straights"):
        assert name in out


def test_cli_help_lists_new():
    out = subprocess.run(
        [sys.executable, "-m", "tools.cli", "--help"], capture_output=True, text=True, cwd=REPO
    ).stdout
    assert "new" in out and "guided wizard" in out


def test_the_spec_example_with_a_catalogue_track(tmp_path, capsys, monkeypatch):
    pytest.importorskip("tracks.catalogue")
    monkeypatch.chdir(tmp_path)
    argv = (
        "new m --track reinvent_like --steering-levels 5 --max-steer 30 --speed-levels 2 "
        "--max-speed 0.8 --reward centerline --randomize standard --minutes 15 --yes"
    ).split()
    assert racer(argv) == 0
    out = capsys.readouterr().out
    assert "racer train --track reinvent_like --reward m/reward_function.py" in out
    cfg = config_from_json(json.loads((tmp_path / "m" / "train.json").read_text()), "t")
    assert cfg.track == ("reinvent_like",)
    assert (tmp_path / "m" / "track.png").stat().st_size > 10000


def test_input_ending_early_is_a_clear_error(tmp_path, track_file):
    proc = subprocess.run(
        [sys.executable, "-m", "tools.cli", "new", str(tmp_path / "m"), "--track", str(track_file)],
        input="discrete\n",
        capture_output=True,
        text=True,
        cwd=REPO,
    )
    assert proc.returncode == 2
    assert "input ended" in proc.stderr and "Traceback" not in proc.stderr
    assert not (tmp_path / "m").exists()


def test_racer_train_takes_the_wizards_train_json_as_is(tmp_path, capsys, monkeypatch):
    """`racer train --config m/train.json` resolves to exactly the config of the printed
    command; flags beside --config override it."""
    pytest.importorskip("tracks.catalogue")
    import shlex

    from tools import cmd_train

    monkeypatch.chdir(tmp_path)
    argv = "new m --track reinvent_like --reward centerline --minutes 7 --yes".split()
    assert racer(argv) == 0
    out = capsys.readouterr().out
    printed = next(line for line in out.splitlines() if "racer train --track" in line)
    flags = shlex.split(printed[printed.index("racer train") :])[2:]
    from_flags = cmd_train.resolve(cmd_train.build_parser().parse_args(flags + ["--out", "m/run"]))
    from_file = cmd_train.resolve(cmd_train.build_parser().parse_args(["--config", "m/train.json"]))
    assert from_file[0] == from_flags[0]
    assert from_file[1] == from_flags[1] and from_file[2] == from_flags[2]
    assert from_file[0].minutes == 7.0
    override = cmd_train.build_parser().parse_args(["--config", "m/train.json", "--minutes", "2"])
    assert cmd_train.resolve(override)[0].minutes == 2.0


def test_a_recipe_folder_trains_with_the_recipes_options(tmp_path, capsys, monkeypatch):
    """`racer new m --recipe fast_laps`: the recipe's files are copied into the folder
    (the user may edit them), and its options reach `racer train` by the printed command
    and by train.json alike."""
    pytest.importorskip("tracks.catalogue")
    import shlex

    from tools import cmd_train
    from trainer import recipes

    monkeypatch.chdir(tmp_path)
    argv = "new m --recipe fast_laps --track reinvent_like --minutes 7 --yes".split()
    assert racer(argv) == 0
    out = capsys.readouterr().out
    printed = next(line for line in out.splitlines() if "racer train" in line)
    assert "--recipe fast_laps" in printed
    md = load_metadata(tmp_path / "m" / "model_metadata.json")
    assert md.action_space.kind == "continuous"
    assert md.to_json() == load_metadata(recipes.FAST_LAPS.metadata).to_json()
    reward = (tmp_path / "m" / "reward_function.py").read_text()
    assert reward == recipes.FAST_LAPS.reward.read_text()
    flags = shlex.split(printed[printed.index("racer train") :])[2:]
    from_flags = cmd_train.resolve(cmd_train.build_parser().parse_args(flags))
    from_file = cmd_train.resolve(cmd_train.build_parser().parse_args(["--config", "m/train.json"]))
    assert from_file[0] == from_flags[0]
    assert from_file[0].dagger_rounds == recipes.FAST_LAPS.train_options()["dagger_rounds"]
    assert from_file[0].reward == "m/reward_function.py"
    assert "fast_laps" in (tmp_path / "m" / "README.md").read_text()


def test_racer_train_config_errors_are_one_line(tmp_path, capsys):
    bad = tmp_path / "train.json"
    bad.write_text('{"out": "r", "colour": "red"}')
    assert racer(["train", "--config", str(bad)]) == 2
    assert "unknown key(s) ['colour']" in capsys.readouterr().err
    assert racer(["train", "--config", str(tmp_path / "missing.json")]) == 2
    assert "cannot read it" in capsys.readouterr().err


REWARDS = Path(__file__).parent / "data"


@pytest.mark.parametrize(
    "name, needles",
    [
        (
            "reward_uses_rospy.py",
            ["importing the file raised ModuleNotFoundError", "rospy exists only inside"],
        ),
        ("reward_text_only.py", ["defines no function named reward_function"]),
        ("reward_bad_value.py", ["'off'"]),
    ],
)
def test_reward_files_are_loaded_and_checked_as_training_does(
    tmp_path, track_file, capsys, name, needles
):
    path = REWARDS / name
    code = racer(
        ["new", str(tmp_path / "x"), "--track", str(track_file), "--yes", "--reward", str(path)]
    )
    err = capsys.readouterr().err
    assert code == 2 and len(err.strip().splitlines()) == 1, err
    assert str(path) in err and all(n in err for n in needles), err
    assert not (tmp_path / "x").exists()


def test_a_reward_file_using_scipy_and_shapely_is_accepted(tmp_path, track_file):
    path = REWARDS / "reward_scipy_shapely.py"
    code = racer(
        ["new", str(tmp_path / "x"), "--track", str(track_file), "--yes", "--reward", str(path)]
    )
    assert code == 0
    assert (tmp_path / "x" / "reward_function.py").read_text() == path.read_text()
