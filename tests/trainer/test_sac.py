"""SAC (`trainer.sac`, `trainer.replay`, `trainer.algorithms`): the squashed Gaussian's
log-density against a NumPy reference, the target networks' Polyak update, the losses
falling on a fixed batch, the replay buffer's frame sharing, DeepRacer's SAC files
accepted and a discrete SAC refused, and a tiny run on the fake environment that trains,
checkpoints, resumes, evaluates and exports to TFLite."""

from __future__ import annotations

import dataclasses
import json
import math

import numpy as np
import pytest

from tests.trainer.conftest import FAKE_ENV, continuous_metadata
from trainer.actor import act, squashed_logp
from trainer.config import Hyperparameters, TrainConfig
from trainer.episodes import Episode
from trainer.errors import TrainConfigError
from trainer.replay import ReplayBuffer

tf = pytest.importorskip("tensorflow")


def sac_metadata(network: str = "OPENRACER_LOWRES"):
    return dataclasses.replace(continuous_metadata(network), training_algorithm="sac")


def episode(rng, n: int, index: int = 0, *, terminated: bool = True, shape=(120, 160, 1)):
    """A made-up episode of `n` steps whose frame k is filled with 10 * index + k."""
    ep = Episode(index=index)
    ep.obs = [np.full(shape, (10 * index + k) % 256, np.uint8) for k in range(n)]
    ep.actions = [rng.uniform(-1, 1, 2).astype(np.float32) for _ in range(n)]
    ep.rewards = [float(k) for k in range(n)]
    ep.end(terminated, not terminated, np.full(shape, (10 * index + n) % 256, np.uint8))
    return ep


# ---------------------------------------------------------------------------------------
# The pieces
# ---------------------------------------------------------------------------------------


def test_squashed_log_density_matches_a_numpy_reference():
    from trainer.sac import squashed_sample

    rng = np.random.default_rng(0)
    mean = rng.normal(0, 1.5, (64, 2))
    log_std = rng.uniform(-2, 1, (64, 2))
    noise = rng.standard_normal((64, 2))
    # Reference: change of variables a = tanh(u), u ~ N(mean, std), in float64 directly:
    # log p(a) = log N(u) - log |da/du| = log N(u) - log(1 - tanh(u)^2).
    u = mean + np.exp(log_std) * noise
    std = np.exp(log_std)
    log_normal = -0.5 * ((u - mean) / std) ** 2 - np.log(std) - 0.5 * math.log(2 * math.pi)
    reference = np.sum(log_normal - np.log(1.0 - np.tanh(u) ** 2), axis=1)
    actions, logp = squashed_sample(
        tf.constant(mean, tf.float32),
        tf.constant(log_std, tf.float32),
        tf.constant(noise, tf.float32),
    )
    np.testing.assert_allclose(actions.numpy(), np.tanh(u), atol=1e-6)
    np.testing.assert_allclose(logp.numpy(), reference, rtol=1e-4, atol=1e-3)
    # The NumPy actor scores with the same formula.
    np.testing.assert_allclose(squashed_logp(u, mean, log_std), reference, rtol=1e-9, atol=1e-6)
    # Saturated tanh stays finite (the naive log(1 - tanh^2) would be -inf).
    _, far = squashed_sample(
        tf.constant([[30.0, -30.0]]), tf.constant([[0.0, 0.0]]), tf.zeros((1, 2))
    )
    assert np.isfinite(far.numpy()).all()


def test_the_numpy_actor_samples_the_squashed_gaussian_and_acts_greedily_on_the_mean():
    from trainer.actor import act_squashed

    out = np.array([[0.3, -0.2, math.log(0.5), math.log(0.1)]] * 20000, np.float32)
    actions, logp = act_squashed(out, np.random.default_rng(1))
    pre = np.arctanh(np.clip(actions, -0.999999, 0.999999))
    assert pre.mean(axis=0) == pytest.approx([0.3, -0.2], abs=0.02)
    assert pre.std(axis=0) == pytest.approx([0.5, 0.1], rel=0.05)
    assert np.isfinite(logp).all()
    greedy, zero = act_squashed(out[:1], np.random.default_rng(1), greedy=True)
    np.testing.assert_allclose(greedy, np.tanh([[0.3, -0.2]]), rtol=1e-6)
    assert zero[0] == 0.0


def test_replay_shares_frames_and_drops_the_oldest_transitions():
    rng = np.random.default_rng(0)
    buf = ReplayBuffer(10, obs_shape=(2, 2, 1))
    buf.add_episode(episode(rng, 4, index=0, shape=(2, 2, 1)))  # 5 frames, 4 transitions
    buf.add_episode(episode(rng, 3, index=1, terminated=False, shape=(2, 2, 1)))  # 4, 3
    assert len(buf) == 7 and buf.frames_written == 9
    s = buf.sample(200, rng)
    # s' is the frame after s within the episode, the final observation included.
    np.testing.assert_array_equal(s.next_obs[:, 0, 0, 0], s.obs[:, 0, 0, 0] + 1)
    ends = s.rewards == 3.0  # the last step of episode 0 (rewards are 0, 1, 2, ...)
    assert ends.any() and (s.done[ends] == 1.0).all()
    assert (s.done[~ends] == 0.0).all()  # episode 1 was truncated: it bootstraps
    # A third episode (frames 9-12) overwrites frames 0-2: the three oldest transitions
    # go; episode 0's last one (frames 3 -> 4) is still whole and stays.
    buf.add_episode(episode(rng, 3, index=2, shape=(2, 2, 1)))
    assert len(buf) == 7
    s = buf.sample(500, rng)
    assert set(np.unique(s.obs[:, 0, 0, 0])) == {3, 10, 11, 12, 20, 21, 22}
    np.testing.assert_array_equal(s.next_obs[:, 0, 0, 0], s.obs[:, 0, 0, 0] + 1)
    with pytest.raises(TrainConfigError, match="cannot hold one episode"):
        buf.add_episode(episode(rng, 12, shape=(2, 2, 1)))


def test_polyak_moves_the_targets_tau_of_the_way():
    from trainer.sac import TAU, SACLearner

    learner = SACLearner(sac_metadata(), Hyperparameters(batch_size=8), seed=0, replay_frames=64)
    rng = np.random.default_rng(0)
    learner.replay.add_episode(episode(rng, 20))
    target0 = [w.copy() for w in learner.nets.target.get_weights()]
    np.testing.assert_array_equal(target0[0], learner.nets.critic.get_weights()[0])
    learner.train_on(8, 1, rng)
    critic1 = learner.nets.critic.get_weights()
    for t0, c1, t1 in zip(target0, critic1, learner.nets.target.get_weights(), strict=True):
        np.testing.assert_allclose(t1, (1 - TAU) * t0 + TAU * c1, rtol=1e-5, atol=1e-7)
    assert not np.allclose(critic1[-2], target0[-2])  # the critic did move


def test_losses_fall_on_a_fixed_batch():
    from trainer.sac import SACLearner

    hp = Hyperparameters(batch_size=16, lr=1e-3, discount_factor=0.9, sac_alpha=0.2)
    learner = SACLearner(sac_metadata(), hp, seed=0, replay_frames=64)
    rng = np.random.default_rng(0)
    learner.replay.add_episode(episode(rng, 16))  # 16 transitions: every batch holds them
    first = learner.train_on(16, 1, rng)
    learner.train_on(16, 60, rng)
    last = learner.train_on(16, 5, rng)
    assert np.isfinite([first["value_loss"], last["value_loss"], last["policy_loss"]]).all()
    assert last["value_loss"] < 0.5 * first["value_loss"]
    # The actor climbs the critic: its loss alpha log pi - min Q falls.
    assert last["policy_loss"] < first["policy_loss"]


def test_checkpoint_policy_is_ppo_s_continuous_policy_with_tanh_of_the_mean():
    from trainer.networks import build_networks
    from trainer.sac import SACLearner

    md = sac_metadata("OPENRACER_FAST")
    learner = SACLearner(md, Hyperparameters(), seed=3, replay_frames=2000)
    frames = np.random.default_rng(0).integers(0, 255, (3, 120, 160, 1), dtype=np.uint8)
    nets = build_networks(md)  # what export and evaluation load
    nets.policy_logits.set_weights(learner.weights()["policy"])
    mean, _ = learner.nets.actor(tf.constant(frames))
    np.testing.assert_allclose(nets.policy(frames).numpy(), np.tanh(mean.numpy()), atol=1e-5)
    # The NumPy actor agrees: greedy is tanh(mean); training samples around it.
    greedy = learner.actor_spec(greedy=True)
    actions, _ = act(greedy, greedy.head(frames), np.random.default_rng(0))
    np.testing.assert_allclose(actions, np.tanh(mean.numpy()), atol=1e-4)
    spec = learner.actor_spec()
    assert spec.squashed and spec.head(frames).shape == (3, 4)
    np.testing.assert_allclose(spec.head(frames)[:, :2], mean.numpy(), atol=1e-4)


# ---------------------------------------------------------------------------------------
# DeepRacer's files
# ---------------------------------------------------------------------------------------


DEEPRACER_SAC_METADATA = {
    "action_space": {"steering_angle": {"high": 30, "low": -30}, "speed": {"high": 2, "low": 1}},
    "sensor": ["FRONT_FACING_CAMERA"],
    "neural_network": "DEEP_CONVOLUTIONAL_NETWORK_SHALLOW",
    "training_algorithm": "sac",
    "action_space_type": "continuous",
    "version": "5",
}
DEEPRACER_SAC_HYPERPARAMETERS = {
    "batch_size": 64,
    "discount_factor": 0.999,
    "e_greedy_value": 0.05,
    "epsilon_steps": 10000,
    "exploration_type": "additive_noise",
    "loss_type": "mean squared error",
    "lr": 0.0003,
    "num_episodes_between_training": 20,
    "num_epochs": 10,
    "stack_size": 1,
    "term_cond_avg_score": 100000.0,
    "term_cond_max_episodes": 100000,
    "sac_alpha": 0.2,
}


def _write(tmp_path, metadata, hyperparameters):
    md, hp = tmp_path / "model_metadata.json", tmp_path / "hyperparameters.json"
    md.write_text(json.dumps(metadata))
    hp.write_text(json.dumps(hyperparameters))
    return str(md), str(hp)


def test_deepracer_sac_files_are_accepted(tmp_path):
    from tools import cmd_train

    md, hp = _write(tmp_path, DEEPRACER_SAC_METADATA, DEEPRACER_SAC_HYPERPARAMETERS)
    args = cmd_train.build_parser().parse_args(
        ["--metadata", md, "--hyperparameters", hp, "--out", str(tmp_path / "run")]
    )
    config, hyper, metadata = cmd_train.resolve(args)
    assert metadata.training_algorithm == "sac" and metadata.action_space.kind == "continuous"
    assert hyper.exploration_type == "additive_noise" and hyper.sac_alpha == 0.2
    assert config.metadata == md


def test_sac_with_discrete_actions_is_a_one_line_error(tmp_path, capsys):
    from tools.cli import main as racer

    discrete = {
        **DEEPRACER_SAC_METADATA,
        "action_space": [{"steering_angle": 0, "speed": 1}, {"steering_angle": 30, "speed": 1}],
        "action_space_type": "discrete",
    }
    md, hp = _write(tmp_path, discrete, DEEPRACER_SAC_HYPERPARAMETERS)
    code = racer(["train", "--metadata", md, "--hyperparameters", hp, "--out", str(tmp_path / "r")])
    err = capsys.readouterr().err
    assert code == 2
    assert md in err and "'sac'" in err and "'discrete'" in err
    assert '"action_space_type": "continuous"' in err and "clipped_ppo" in err
    assert not (tmp_path / "r").exists()


def test_algorithm_checks_name_the_file_and_the_fix(tmp_path):
    from trainer.algorithms import check_algorithm
    from vehicle.metadata import ModelMetadata

    hp = Hyperparameters(exploration_type="additive_noise")
    ppo = TrainConfig(out=str(tmp_path), hyperparameters="hp.json")
    with pytest.raises(TrainConfigError, match=r"hp.json: exploration_type 'additive_noise'"):
        check_algorithm(ppo, hp, ModelMetadata())
    # A discrete SAC built in code (the parser refuses it in a file) is refused too.
    discrete_sac = dataclasses.replace(ModelMetadata(), training_algorithm="sac")
    with pytest.raises(TrainConfigError, match="continuous actions only"):
        check_algorithm(ppo, Hyperparameters(), discrete_sac)
    with pytest.raises(TrainConfigError, match="--imitation-episodes: PPO options"):
        check_algorithm(dataclasses.replace(ppo, imitation_episodes=5), hp, sac_metadata())
    with pytest.raises(TrainConfigError, match="--lr-anneal-steps: PPO options"):
        check_algorithm(dataclasses.replace(ppo, lr_anneal_steps=1000), hp, sac_metadata())
    check_algorithm(ppo, hp, sac_metadata())


# ---------------------------------------------------------------------------------------
# End to end on the fake environment
# ---------------------------------------------------------------------------------------


def sac_config(out, track, **kw):
    base = dict(
        out=str(out),
        track=(track,),
        minutes=10,
        workers=1,
        eval_episodes=2,
        max_iterations=2,
        env_id=FAKE_ENV,
        randomize="none",
        replay_frames=5000,
        sac_updates_per_step=0.1,
    )
    base.update(kw)
    return TrainConfig(**base)


@pytest.mark.slow
def test_a_sac_run_trains_checkpoints_resumes_evaluates_and_exports(tmp_path, track_file, capsys):
    from tools.cli import main as racer
    from trainer.checkpoint import RunDir, load_keras_policy
    from trainer.evaluate import evaluate
    from trainer.ppo import train
    from trainer.progress import ProgressDisplay
    from trainer.targets import policy_from_target

    md = sac_metadata("OPENRACER_LOWRES")
    hp = Hyperparameters(batch_size=16, num_episodes_between_training=3, discount_factor=0.9)
    first = train(sac_config(tmp_path / "a", track_file), hp, md)
    assert first.iterations == 2 and first.episodes == 6
    h = first.history[-1]
    assert h["gradient_steps"] >= 1 and h["replay_size"] > 0
    assert np.isfinite([h["value_loss"], h["policy_loss"], h["entropy"]]).all()
    run = RunDir(tmp_path / "a")
    assert json.loads(run.metadata_file.read_text())["training_algorithm"] == "sac"
    assert json.loads(run.hyperparameters_file.read_text())["sac_alpha"] == 0.2
    assert len(list(run.simtrace.glob("*-iteration.csv"))) == 2
    assert list(run.tensorboard.glob("events.out.tfevents.*"))
    metrics = json.loads(run.metrics.read_text())["metrics"]
    assert [m["phase"] for m in metrics].count("evaluation") == 4
    weights, _, saved = run.load_resume()
    assert {"policy", "sac_log_std", "sac_critic", "sac_target"} <= set(weights)

    # Resume: the weights, Adam state and counters come back, the replay buffer refills.
    messages: list[str] = []
    display = ProgressDisplay("t", 600, quiet=True)
    display.message = messages.append  # type: ignore[method-assign]
    resumed = train(
        sac_config(tmp_path / "a", track_file, max_iterations=3, resume=True),
        hp,
        md,
        display=display,
    )
    assert resumed.iterations == 3 and resumed.episodes == 9
    assert any("replay buffer is not saved" in m for m in messages)
    assert resumed.history[0]["replay_size"] < h["replay_size"] + 1000

    # Evaluation and export use the checkpoint as PPO's continuous policy.
    model, meta, info = load_keras_policy(tmp_path / "a", "last")
    assert info["iteration"] == 3 and meta.training_algorithm == "sac"
    assert np.asarray(model(np.zeros((1, 120, 160, 1), np.uint8))).shape == (1, 2)
    policy_fn, _, _, _ = policy_from_target(str(tmp_path / "a"), "best")
    report = evaluate(policy_fn, track_file, laps=1, metadata=meta, env_id=FAKE_ENV)
    assert report.to_json()["laps"] == 1
    out = tmp_path / "sac.tar.gz"
    small = ["--representative-frames", "200", "--parity-frames", "100"]  # 10 judging laps
    code = racer(["export", str(tmp_path / "a"), "--format", "int8", "--out", str(out), *small])
    assert code == 0, capsys.readouterr().err
    from vehicle.models.bundle import read_bundle

    bundle = read_bundle(out)
    assert bundle.metadata.training_algorithm == "sac"
    assert bundle.metadata.action_space.kind == "continuous"
