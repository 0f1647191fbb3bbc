"""A user's reward function misbehaving in the middle of training (issue 20): a hang the
per-call limit stops, a hang it cannot stop (the budget still ends the run and the process
is killed), errors naming the user's file, the run folder marked failed, and the warning
when the reward function makes training slow. Fake environment, tiny budgets, bounded wall
times."""

from __future__ import annotations

import json
import re
import time

import psutil
import pytest

from sim2real.errors import RewardFunctionError
from tests.trainer.conftest import FAKE_ENV
from trainer.checkpoint import RunDir
from trainer.config import TrainConfig
from trainer.ppo import slow_reward_warning, train
from trainer.progress import ProgressDisplay


def config(out, track, reward, **kw):
    base = dict(
        out=str(out),
        track=(track,),
        reward=str(reward),
        minutes=10,
        workers=1,
        eval_episodes=1,
        max_iterations=2,
        env_id=FAKE_ENV,
        randomize="none",
    )
    base.update(kw)
    return TrainConfig(**base)


def write(path, body):
    """A reward file that behaves for 30 calls and then runs `body`."""
    path.write_text(
        "calls = 0\n"
        "def reward_function(params):\n"
        "    global calls\n"
        "    calls += 1\n"
        "    if calls > 30:\n" + "".join(f"        {line}\n" for line in body) + "    return 1.0\n"
    )
    return path


class Messages(ProgressDisplay):
    def __init__(self) -> None:
        super().__init__("test", 60.0, quiet=True)
        self.lines: list[str] = []

    def message(self, text: str) -> None:
        self.lines.append(text)


@pytest.mark.timeout(180)
@pytest.mark.parametrize("workers", [1, 2])
def test_a_hang_mid_run_is_stopped_and_names_the_users_file(
    tmp_path, track_file, fast_metadata, small_hp, workers
):
    reward = write(tmp_path / "hangs_later.py", ["while True:", "    pass"])
    cfg = config(tmp_path / "run", track_file, reward, workers=workers, reward_time_limit_s=0.5)
    with pytest.raises(RewardFunctionError) as info:
        train(cfg, small_hp, fast_metadata)
    msg = str(info.value)
    assert re.search(
        rf"reward function {re.escape(str(reward))} line [67] ran longer than the 0.5 s time limit",
        msg,
    ), msg
    assert "reward_function.py" not in msg  # not the run's copy
    failed = json.loads(RunDir(cfg.out).failure_file.read_text())
    assert failed["error_type"] == "RewardFunctionError" and str(reward) in failed["error"]


@pytest.mark.timeout(180)
def test_a_hang_the_limit_cannot_stop_ends_with_the_budget(
    tmp_path, track_file, fast_metadata, small_hp, monkeypatch
):
    """Whether it hangs in a rollout (killed at the budget) or in the evaluation after
    one (killed at the budget plus the evaluation's grace)."""
    from trainer import ppo

    monkeypatch.setattr(ppo, "EVALUATION_GRACE_S", 5.0)
    reward = write(
        tmp_path / "swallows.py",
        [
            "import time",
            "while True:",
            "    try:",
            "        time.sleep(5)",
            "    except BaseException:",
            "        pass",
        ],
    )
    cfg = config(
        tmp_path / "run",
        track_file,
        reward,
        workers=2,
        minutes=0.2,
        max_iterations=0,
        reward_time_limit_s=0.5,
    )
    start = time.monotonic()
    result = train(cfg, small_hp, fast_metadata)
    assert time.monotonic() - start < 0.2 * 60 + 5 + 30
    assert "time budget" in result.stop_reason
    assert "; stopped simulator worker " in result.stop_reason, result.stop_reason
    time.sleep(0.5)
    workers = [
        p
        for p in psutil.Process().children(recursive=True)
        if "spawn_main" in " ".join(p.cmdline()) and p.status() != psutil.STATUS_ZOMBIE
    ]
    assert not workers  # the hung simulator process was killed


@pytest.mark.timeout(180)
def test_a_slow_reward_is_named_with_its_cost(tmp_path, track_file, fast_metadata, small_hp):
    reward = tmp_path / "slow.py"
    reward.write_text(
        "import time\ndef reward_function(params):\n    time.sleep(0.004)\n    return 1.0\n"
    )
    display = Messages()
    cfg = config(tmp_path / "run", track_file, reward, max_iterations=1)
    train(cfg, small_hp, fast_metadata, display=display)
    warned = [m for m in display.lines if m.startswith("warning: the reward function")]
    assert len(warned) == 1, display.lines
    assert str(reward) in warned[0] and " ms per call, " in warned[0]
    assert "of the " in warned[0] and "it is what makes training slow" in warned[0]


def test_slow_reward_warning_rule():
    assert slow_reward_warning("r.py", None) is None
    assert slow_reward_warning("r.py", 0.0001) is None
    assert slow_reward_warning("r.py", 0.001, 0.01) is None
    text = slow_reward_warning("r.py", 0.1)
    assert text and "takes 100.0 ms per call" in text and "r.py" in text
    text = slow_reward_warning("r.py", 0.1, 0.102)
    assert text and "98 % of the 102.0 ms a step takes" in text


@pytest.mark.timeout(120)
def test_the_check_measures_a_slow_reward_before_training(tmp_path, fast_metadata, small_hp):
    """Issue 20 item 8: a 20 ms reward is named before training, even if the budget ends
    before any iteration does."""
    from trainer.ppo import open_run

    reward = tmp_path / "slow.py"
    reward.write_text(
        "import time\ndef reward_function(params):\n    time.sleep(0.02)\n    return 1.0\n"
    )
    cfg = TrainConfig(out=str(tmp_path / "run"), reward=str(reward), randomize="none")
    run, kwargs, check_s = open_run(cfg, small_hp, fast_metadata)
    assert check_s is not None and check_s >= 0.018
    assert kwargs["validate_reward"] is False and kwargs["reward_source"] == str(reward)
    assert kwargs["reward_function"] == str(run.reward_file)
    text = slow_reward_warning(str(reward), check_s)
    assert text and f"the reward function {reward} takes" in text


def test_stopped_note_names_the_processes_and_calls_a_long_one_hung():
    from trainer.ppo import stopped_note

    class Pool:
        killed: list = []

    assert stopped_note(Pool()) == ""
    Pool.killed = [(1, 7, 2.0)]
    assert stopped_note(Pool()) == "; stopped simulator worker 1 (episode 7, 2 s on it)"
    Pool.killed = [(0, 3, 45.0), (1, 7, 2.0)]
    assert "it looks hung" in stopped_note(Pool())
