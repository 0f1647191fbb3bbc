"""Behaviour cloning from the pure-pursuit expert on the real simulator (tiny budget)."""

from __future__ import annotations

import numpy as np

from trainer.config import Hyperparameters
from trainer.evaluate import env_kwargs_for
from trainer.expert_data import collect_expert
from trainer.imitation import behaviour_clone
from trainer.ppo import Learner


def test_expert_frames_and_cloning_fit_the_expert(fast_metadata):
    kwargs = env_kwargs_for("reinvent_like", fast_metadata, "none")
    data = collect_expert(
        "openracer/Race-v0", kwargs, fast_metadata.action_space, 2, seed=0, max_steps=40
    )
    obs, actions = data.obs, data.actions
    assert obs.shape[1:] == (120, 160, 1) and obs.dtype == np.uint8
    assert len(obs) == len(actions) == 80  # the expert stays on the road
    assert len(set(actions.tolist())) > 1  # it steers
    learner = Learner(fast_metadata, Hyperparameters())
    rng = np.random.default_rng(0)
    first = behaviour_clone(learner, obs, actions, rng, epochs=1, batch_size=16)
    last = behaviour_clone(learner, obs, actions, rng, epochs=6, batch_size=16)
    assert last["loss"] < first["loss"]
    assert last["accuracy"] > 0.5


def test_dagger_labels_the_students_frames_with_the_experts_actions(fast_metadata):
    """With the student driving (beta 0), every frame it visits is labelled by the expert:
    an untrained student weaves off the centre line, and the labels steer it back."""
    from sim2real.pure_pursuit import PurePursuitConfig

    kwargs = env_kwargs_for("reinvent_like", fast_metadata, "none")
    learner = Learner(fast_metadata, Hyperparameters())
    space = fast_metadata.action_space
    expert = PurePursuitConfig(line="racing", racing_speed_fraction=0.8)
    alone = collect_expert("openracer/Race-v0", kwargs, space, 1, 0, 40, expert=expert)
    dagger = collect_expert(
        "openracer/Race-v0",
        kwargs,
        space,
        1,
        0,
        40,
        expert=expert,
        student=learner.actor_spec(greedy=True),
        beta=0.0,
    )
    student_actions = learner.actor_spec(greedy=True).head(dagger.obs).argmax(axis=1)
    # The labels are the expert's, not what the student did ...
    assert not np.array_equal(dagger.actions, student_actions)
    # ... on frames the expert alone would not have seen.
    assert len(dagger.obs) != len(alone.obs) or not np.array_equal(dagger.obs, alone.obs)


def test_expert_frames_are_the_same_from_two_processes(fast_metadata):
    kwargs = env_kwargs_for("reinvent_like", fast_metadata, "standard")
    space = fast_metadata.action_space
    one = collect_expert("openracer/Race-v0", kwargs, space, 3, 5, 30)
    two = collect_expert("openracer/Race-v0", kwargs, space, 3, 5, 30, processes=2)
    assert one.episodes == two.episodes == 3
    np.testing.assert_array_equal(one.obs, two.obs)
    np.testing.assert_array_equal(one.actions, two.actions)
