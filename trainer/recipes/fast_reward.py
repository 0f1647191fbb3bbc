"""Reward of the learning-benchmark recipe: stay near the centre line, go fast, finish.

Centre term: 1 on the centre line, falling quadratically to 0 at the border; times the
commanded speed over 2 m/s, so a faster action earns more per step while the centre term
keeps the car on the road; plus a bonus of 10 on the step that completes the lap.
Off the road: 0.001 (DeepRacer's usual floor).
"""


def reward_function(params):
    if params["is_offtrack"] or not params["all_wheels_on_track"]:
        return 1e-3
    half = 0.5 * params["track_width"]
    ratio = min(params["distance_from_center"] / half, 1.0) if half > 0 else 1.0
    centre = 1.0 - ratio * ratio
    reward = centre * params["speed"] / 2.0
    if params["progress"] >= 100.0:
        reward += 10.0
    return float(max(reward, 1e-3))
