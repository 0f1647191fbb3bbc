"""Centre line without zig-zag (openracer reward gallery).

The centre-line reward of `centerline`, multiplied by 0.8 whenever the commanded
steering is sharper than a threshold. A policy that flicks left-right-left to stay on
the centre loses a fifth of its reward on every sharp step, so it learns to hold a
steady angle. This matters more on the real car than in the simulator: every sharp
flick is a servo move, and oscillation on straights is the most common sim2real
complaint.

Tune `ABS_STEERING_THRESHOLD_DEG` to your action space: about half the maximum
steering angle (15 degrees for the console's +-30 degrees).

Copy this file and pass it to `racer train --reward FILE`. Standard library only; it
runs unchanged in the AWS DeepRacer console and deepracer-for-cloud.
"""

ABS_STEERING_THRESHOLD_DEG = 15.0
"""Steering sharper than this (degrees, either side) is penalised."""
PENALTY_FACTOR = 0.8
"""Reward multiplier for a sharp steering step."""


def reward_function(params):
    """Centre-line bands, times 0.8 when |steering| exceeds the threshold."""
    distance_from_center = params["distance_from_center"]
    track_width = params["track_width"]
    steering = abs(params["steering_angle"])

    if params.get("is_offtrack", False) or not params["all_wheels_on_track"]:
        return 1e-3

    marker_1 = 0.1 * track_width
    marker_2 = 0.25 * track_width
    marker_3 = 0.5 * track_width
    if distance_from_center <= marker_1:
        reward = 1.0
    elif distance_from_center <= marker_2:
        reward = 0.5
    elif distance_from_center <= marker_3:
        reward = 0.1
    else:
        reward = 1e-3

    if steering > ABS_STEERING_THRESHOLD_DEG:
        reward *= PENALTY_FACTOR
    return float(reward)
