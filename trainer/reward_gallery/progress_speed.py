"""Progress per step, plus speed (openracer reward gallery): the time-trial reward.

A lap is fast when it takes few steps, so pay for the share of the lap covered per step:
`progress / steps`, scaled so that a lap at `TARGET_LAP_STEPS` steps earns about 1.0 per
step; a slower lap earns less on every step, a faster one more. A small term in
`(speed / TARGET_SPEED_MPS) ** 2` rewards the faster action in the meantime, because
progress per step says little in the first steps of an episode. Finishing the lap pays
a bonus that grows as the lap gets shorter. Off the track: 1e-3.

This is the style of reward fast DeepRacer models use ("progress / steps * 100 +
speed ** 2" in makit.net's time-trial experiments; DamonDeng/deepracer_sample sizes an
expected-progress reward from a 105-step, 7 s lap on the re:Invent 2018 track). It pays
for speed, not for safety: start from a model that already laps (a `racer train --clone`
of a run trained with `centerline`, or the "fast laps" recipe, which imitates the racing
line first). Trained on speed alone for hours, DeepRacer models got faster in the
simulator and worse on the real car (scottpletcher/deepracer, v3-GetFast): keep the
randomization on.

Set `TARGET_LAP_STEPS` to the steps of the lap time you aim for (15 steps per second:
a 7 s lap is 105 steps) and `TARGET_SPEED_MPS` to the top speed of your action space.
Standard library only; it runs unchanged in the AWS DeepRacer console and
deepracer-for-cloud.
"""

TARGET_LAP_STEPS = 105
"""Steps of the lap time you aim for (15 steps per second)."""
TARGET_SPEED_MPS = 4.0
"""The fastest speed of the action space, m/s."""
SPEED_WEIGHT = 0.2
"""Weight of the speed term next to progress per step."""
LAP_BONUS = 10.0
"""Bonus for completing the lap at `TARGET_LAP_STEPS` (scaled by target / actual steps)."""


def reward_function(params):
    if params["is_offtrack"] or not params["all_wheels_on_track"]:
        return 1e-3
    steps = max(params["steps"], 1)
    progress = params["progress"]
    # A lap at TARGET_LAP_STEPS covers 100 / TARGET_LAP_STEPS % per step: that earns 1.0.
    reward = (progress / steps) * TARGET_LAP_STEPS / 100.0
    reward += SPEED_WEIGHT * (params["speed"] / TARGET_SPEED_MPS) ** 2
    if progress >= 100.0:
        reward += LAP_BONUS * TARGET_LAP_STEPS / steps
    return float(max(reward, 1e-3))
