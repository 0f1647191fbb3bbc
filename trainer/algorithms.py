"""Which learning algorithm a run uses: the one place that reads
`model_metadata.json`'s `training_algorithm`.

- `clipped_ppo` (DeepRacer's default): `trainer.ppo.Learner`, discrete or continuous.
- `sac`: `trainer.sac.SACLearner`, continuous action spaces only (DeepRacer's rule).

`trainer.ppo.train` runs either: the run directory, rollouts, evaluation, logs,
checkpoints and `--resume` are shared; the learner's `learn` is what differs.
`check_algorithm` refuses combinations DeepRacer refuses, or that openracer does not offer for SAC,
before anything is written; it imports no TensorFlow.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from trainer.errors import TrainConfigError

if TYPE_CHECKING:
    from trainer.config import Hyperparameters, TrainConfig
    from trainer.ppo import Learner
    from trainer.sac import SACLearner
    from vehicle.metadata import ModelMetadata

ALGORITHMS = ("clipped_ppo", "sac")


def check_algorithm(config: TrainConfig, hp: Hyperparameters, metadata: ModelMetadata) -> None:
    """TrainConfigError, naming the file, the value and the fix, for a run that cannot
    be trained as configured."""
    meta_file = config.metadata or "model_metadata.json"
    hp_file = config.hyperparameters or "hyperparameters.json"
    algo = metadata.training_algorithm
    if algo not in ALGORITHMS:
        raise TrainConfigError(
            f"{meta_file}: training_algorithm {algo!r} is not one of {list(ALGORITHMS)}"
        )
    if algo == "clipped_ppo":
        if hp.exploration_type == "additive_noise":
            raise TrainConfigError(
                f"{hp_file}: exploration_type 'additive_noise' is SAC's; clipped_ppo takes "
                "'categorical' (continuous spaces too) or 'e-greedy'. Change it, or set "
                f'"training_algorithm": "sac" in {meta_file}'
            )
        return
    if metadata.action_space.kind != "continuous":
        raise TrainConfigError(
            f"{meta_file}: training_algorithm 'sac' with a {metadata.action_space.kind} action "
            'space; DeepRacer trains SAC on continuous actions only: set "action_space_type": '
            '"continuous" with steering_angle and speed ranges, or "training_algorithm": '
            '"clipped_ppo"'
        )
    ppo_only = {
        "imitation_episodes": config.imitation_episodes,
        "value_warmup_iterations": config.value_warmup_iterations,
        "anchor_kl": config.anchor_kl,
        "critic": config.critic != "camera",
        "lr_anneal_steps": config.lr_anneal_steps,
    }
    given = [k for k, v in ppo_only.items() if v]
    if given:
        flags = ", ".join("--" + k.replace("_", "-") for k in given)
        raise TrainConfigError(
            f"{flags}: PPO options, not offered with training_algorithm 'sac' ({meta_file}); "
            "drop them, or train with clipped_ppo"
        )
    if config.replay_frames <= config.max_episode_steps:
        raise TrainConfigError(
            f"--replay-frames {config.replay_frames} cannot hold one episode of "
            f"--max-episode-steps {config.max_episode_steps}; raise it"
        )
    # exploration_type is not read for SAC, as in DeepRacer (it explores by its entropy).


def make_learner(
    config: TrainConfig, hp: Hyperparameters, metadata: ModelMetadata
) -> Learner | SACLearner:
    """The learner of `metadata.training_algorithm`, seeded with `config.seed`."""
    if metadata.training_algorithm == "sac":
        from trainer.sac import SACLearner

        return SACLearner(
            metadata,
            hp,
            seed=config.seed,
            replay_frames=config.replay_frames,
            updates_per_step=config.sac_updates_per_step,
        )
    from trainer.ppo import Learner

    return Learner(metadata, hp, seed=config.seed, critic=config.critic)
