"""Stay inside the borders (openracer reward gallery).

Pays 1.0 for every step with all four wheels on the track and the car at least a small
safety margin away from the border, and 1e-3 otherwise. Unlike `centerline` it does not
care where on the road the car is, so the policy is free to cut corners and find its
own line; it only learns where the edges are.

Good for: fast laps once the car is stable; a model trained with it uses the whole
road width. Weak at: the very start of training, where `centerline` gives a clearer
signal.

Copy this file and pass it to `racer train --reward FILE`. Standard library only; it
runs unchanged in the AWS DeepRacer console and deepracer-for-cloud.
"""

SAFETY_MARGIN_FRACTION = 0.05
"""Part of the track width kept free from the border (5 % = about 4 cm on 0.76 m)."""


def reward_function(params):
    """1.0 inside the borders (with a margin), 1e-3 near or over them."""
    all_wheels_on_track = params["all_wheels_on_track"]
    distance_from_center = params["distance_from_center"]
    track_width = params["track_width"]

    if params.get("is_offtrack", False) or not all_wheels_on_track:
        return 1e-3
    limit = 0.5 * track_width - SAFETY_MARGIN_FRACTION * track_width
    if distance_from_center >= limit:
        return 1e-3
    return 1.0
