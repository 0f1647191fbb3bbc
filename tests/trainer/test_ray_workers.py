"""Simulator workers on a real two-node Ray cluster (`trainer.ray_workers`): a head and a
second node started as separate `ray start` processes on this machine, one CPU each, so
the two workers land one on each node. The same episodes as the local pool, a killed
worker process and a killed node whose episodes are played again, a training run across
both nodes that resumes to the local run's exact state. One cluster for the module;
nothing of it is left running afterwards."""

from __future__ import annotations

import os
import signal
import socket
import time

import numpy as np
import pytest

from tests.trainer.conftest import FAKE_ENV
from tests.trainer.ray_cluster import Cluster
from trainer.actor import ActorSpec
from trainer.episodes import EpisodeItem
from trainer.networks import TOPOLOGIES

ray = pytest.importorskip("ray")

pytestmark = [pytest.mark.slow, pytest.mark.timeout(420)]

REWARD = "def reward_function(params):\n    return 1.0 - params['distance_from_center']\n"


@pytest.fixture(scope="module")
def cluster():
    c = Cluster(head_cpus=1, node_cpus=1)
    try:
        yield c
    finally:
        c.stop()
        left = c.ours()
        assert not left, f"Ray processes left running: {[p.pid for p in left]}"


def env_kwargs(reward_file=None):
    from trainer.evaluate import env_kwargs_for
    from vehicle.metadata import ModelMetadata

    return env_kwargs_for("fake", ModelMetadata(), "none", reward_file)


def random_spec(fast_metadata) -> ActorSpec:
    from trainer.networks import build_networks

    nets = build_networks(fast_metadata, 3)
    return ActorSpec(
        topology=TOPOLOGIES[fast_metadata.neural_network],
        weights=[np.asarray(w) for w in nets.policy_logits.get_weights()],
        discrete=True,
    )


def same_episodes(a, b) -> None:
    """The same episodes: numbers, observations, actions, rewards and endings equal; the
    behaviour log-probabilities equal to float32 rounding (a 1-CPU Ray worker's BLAS runs
    one thread, this process's several: the sums inside the policy's matrix products are
    added in another order; README, Training across machines)."""
    assert [e.index for e in a] == [e.index for e in b]
    for x, y in zip(a, b, strict=True):
        np.testing.assert_array_equal(np.asarray(x.actions), np.asarray(y.actions))
        np.testing.assert_allclose(np.asarray(x.logp), np.asarray(y.logp), rtol=1e-5)
        assert x.rewards == y.rewards and x.status == y.status
        np.testing.assert_array_equal(np.stack(x.obs), np.stack(y.obs))


def test_ray_option_takes_auto_or_an_address_and_refuses_anything_else(tmp_path, capsys):
    from tools import cli
    from tools.cmd_train import build_parser
    from trainer.config import TrainConfig
    from trainer.errors import TrainConfigError

    assert build_parser().parse_args(["--ray"]).ray == "auto"
    assert build_parser().parse_args(["--ray", "10.0.0.5:6379"]).ray == "10.0.0.5:6379"
    assert build_parser().parse_args([]).ray is None
    with pytest.raises(TrainConfigError, match="--ray 'head' is not a Ray address.*HOST:PORT"):
        TrainConfig(ray="head")
    # Nothing listens there: one line naming the address and the fix, exit 2, at once.
    assert not ray.is_initialized()
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        closed = f"127.0.0.1:{s.getsockname()[1]}"
    t0 = time.time()
    code = cli.main(
        [
            "train",
            "--ray",
            closed,
            "--out",
            str(tmp_path / "r"),
            "--env-id",
            FAKE_ENV,
            "--track",
            "beginner_oval",
            "--randomize",
            "none",
            "--quiet",
        ]
    )
    err = capsys.readouterr().err
    assert code == 2 and time.time() - t0 < 60
    assert f"--ray {closed}: could not join a Ray cluster there" in err
    assert "ray start --head" in err and not ray.is_initialized()


def test_workers_on_both_nodes_play_the_local_pools_episodes_and_survive_a_killed_worker(
    cluster, tmp_path, fast_metadata
):
    from trainer.ray_workers import RayPool
    from trainer.workers import LocalPool

    reward = tmp_path / "reward.py"
    reward.write_text(REWARD)
    kwargs = {**env_kwargs(str(reward)), "reward_source": "my_reward.py"}
    spec = random_spec(fast_metadata)
    items = [EpisodeItem.training(5, k) for k in range(10)]
    with LocalPool(FAKE_ENV, kwargs, 1, 200) as local:
        expected = local.play_many(spec, items)
    events: list[str] = []
    with RayPool(FAKE_ENV, kwargs, 2, 200, on_event=events.append) as pool:
        where = pool.where()
        assert len({w["node"] for w in where}) == 2, where  # one worker on each node
        assert not any(w["tensorflow"] for w in where)  # NumPy actor only
        same_episodes(pool.play_many(spec, items), expected)

        # Kill a worker process (SIGKILL) while the episodes go round: the episode it was
        # playing is played again elsewhere, from its own seed: nothing lost, none twice.
        # On a loaded machine the victim may have finished everything it held before the
        # kill lands (then nothing is in flight to replay): try again, up to 3 rounds.
        for _ in range(3):
            victim = pool.where()[0]["pid"]

            def on_done(episode, victim=victim):
                if episode.index == 2:
                    os.kill(victim, signal.SIGKILL)

            again = pool.play_many(spec, items, on_done)
            same_episodes(again, expected)
            pool.await_workers(120)
            assert len(pool.where()) == 2  # the replacement took the dead one's CPU
            if pool.replayed >= 1:
                break
        assert pool.replayed >= 1
        assert any("died while playing episode" in e for e in events), events


def test_training_across_two_nodes_survives_a_killed_node_and_resumes_to_the_local_run(
    cluster, tmp_path, track_file, fast_metadata, small_hp
):
    from tests.trainer.test_training import config
    from trainer.checkpoint import RunDir
    from trainer.ppo import train
    from trainer.progress import ProgressDisplay

    class KillsNode(ProgressDisplay):
        """Kills the second node mid-way through the second iteration's rollout."""

        def __init__(self):
            super().__init__("test", 600.0, quiet=True)
            self.lines: list[str] = []

        def message(self, text):
            self.lines.append(text)

        def rollout(self, iteration, steps, episodes_done, episodes):
            if iteration == 1 and episodes_done == 1 and "second" in cluster.nodes:
                cluster.stop_node("second")

    local = train(config(tmp_path / "local", track_file, max_iterations=3), small_hp, fast_metadata)
    display = KillsNode()
    on_ray = config(tmp_path / "ray", track_file, max_iterations=2, workers=2, ray=cluster.address)
    first = train(on_ray, small_hp, fast_metadata, display=display)
    assert "second" not in cluster.nodes, "the node was not killed mid-run"
    assert first.iterations == 2 and first.episodes == 8
    assert any(line.startswith("Ray: 2 simulator workers on") for line in display.lines)
    lost = [line for line in display.lines if "died while playing episode" in line]
    assert lost, display.lines
    assert first.history[1]["replayed_episodes"] >= 1

    # The driver stops (as after a kill); --resume continues on the one node left.
    t0 = time.time()
    resumed = train(
        config(
            tmp_path / "ray",
            track_file,
            max_iterations=3,
            workers=2,
            resume=True,
            ray=cluster.address,
        ),
        small_hp,
        fast_metadata,
        display=ProgressDisplay("t", 600.0, quiet=True),
    )
    assert resumed.iterations == 3 and resumed.episodes == local.episodes == 12
    assert time.time() - t0 < 200
    wa, _, sa = RunDir(tmp_path / "local").load_resume()
    wb, _, sb = RunDir(tmp_path / "ray").load_resume()
    for group in ("policy", "value", "log_std"):
        for x, y in zip(wa[group], wb[group], strict=True):
            print(group, float(np.max(np.abs(x - y))))
            np.testing.assert_allclose(x, y, rtol=1e-3, atol=1e-5)
    assert sa["env_steps"] == sb["env_steps"] and sa["rng"] == sb["rng"]
    for k in range(3):
        name = f"training-simtrace/{k}-iteration.csv"
        assert (tmp_path / "local" / name).read_text() == (tmp_path / "ray" / name).read_text()


def test_expert_episodes_on_the_cluster_are_the_local_ones(cluster):
    from trainer.evaluate import env_kwargs_for
    from trainer.expert_data import collect_expert
    from trainer.trackset import resolve_track
    from vehicle.metadata import ModelMetadata

    md = ModelMetadata()
    kwargs = env_kwargs_for(resolve_track("beginner_oval"), md, "light")
    args = ("openracer/Race-v0", kwargs, md.action_space, 2, 4, 40)
    local = collect_expert(*args, processes=1)
    on_ray = collect_expert(*args, processes=2, on_ray=True)
    assert on_ray.episodes == local.episodes == 2
    np.testing.assert_array_equal(on_ray.obs, local.obs)
    np.testing.assert_array_equal(on_ray.actions, local.actions)
