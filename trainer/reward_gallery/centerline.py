"""Follow the centre line (openracer reward gallery).

The classic first reward: the closer the car stays to the centre line, the higher the
reward. Three bands around the centre line, as wide as 10 %, 25 % and 50 % of the track
width, give 1.0, 0.5 and 0.1; anywhere else (or off the track) gives 1e-3, never 0, so
the learner still sees a gradient between "bad" and "very bad".

Good for: a first model on any track; it learns to stay on the road quickly.
Weak at: speed. The car is paid per step, not per metre, so it has no reason to hurry;
combine with `speed_on_straights` once it completes laps.

Copy this file and pass it to `racer train --reward FILE`. It uses only DeepRacer's
documented `params` keys and the standard library, so it also runs unchanged in the
AWS DeepRacer console and deepracer-for-cloud.
"""

import math


def reward_function(params):
    """Reward staying near the centre line; 1e-3 when off the track."""
    track_width = params["track_width"]
    distance_from_center = params["distance_from_center"]

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

    return float(reward) if math.isfinite(reward) else 1e-3
