"""Behaviour cloning from the pure-pursuit expert on the real simulator (tiny budget)."""

from __future__ import annotations

import numpy as np

from trainer.config import Hyperparameters
from trainer.evaluate import env_kwargs_for
from trainer.imitation import behaviour_clone, collect_expert
from trainer.ppo import Learner


def test_expert_frames_and_cloning_fit_the_expert(fast_metadata):
    kwargs = env_kwargs_for("reinvent_like", fast_metadata, "none")
    obs, actions = collect_expert(
        "openracer/Race-v0", kwargs, fast_metadata.action_space, 2, seed=0, max_steps=40
    )
    assert obs.shape[1:] == (120, 160, 1) and obs.dtype == np.uint8
    assert len(obs) == len(actions) == 80  # the expert stays on the road
    assert len(set(actions.tolist())) > 1  # it steers
    learner = Learner(fast_metadata, Hyperparameters())
    rng = np.random.default_rng(0)
    first = behaviour_clone(learner, obs, actions, rng, epochs=1, batch_size=16)
    last = behaviour_clone(learner, obs, actions, rng, epochs=6, batch_size=16)
    assert last["loss"] < first["loss"]
    assert last["accuracy"] > 0.5
