"""Speed on the straights, care in the corners (openracer reward gallery).

Measures how much the track turns over the next stretch of waypoints. On a straight
(turn below `STRAIGHT_MAX_TURN_DEG`) it pays for speed, as a fraction of
`TARGET_SPEED_MPS`; in a corner it pays most for a moderate speed (the corner target)
and for staying near the centre line. Any step off the track pays 1e-3.

This is a second-stage reward: train first with `centerline` or `borders` until the
car completes laps, then clone the run with this reward to make it faster. Set
`TARGET_SPEED_MPS` to the top speed of your action space (the console default is 0.8
m/s; the wizard writes it for you).

Copy this file and pass it to `racer train --reward FILE`. Standard library only; it
runs unchanged in the AWS DeepRacer console and deepracer-for-cloud.
"""

import math

TARGET_SPEED_MPS = 0.8
"""The fastest speed of the action space (m/s): full reward on straights."""
CORNER_SPEED_FRACTION = 0.6
"""Ideal corner speed as a fraction of TARGET_SPEED_MPS."""
LOOKAHEAD_WAYPOINTS = 6
"""How far ahead (in waypoints) to look for the next corner."""
STRAIGHT_MAX_TURN_DEG = 12.0
"""Total heading change over the look-ahead below which the track counts as straight."""


def _direction_deg(a, b):
    return math.degrees(math.atan2(b[1] - a[1], b[0] - a[0]))


def _turn_ahead_deg(waypoints, start):
    count = len(waypoints)
    distinct = count - 1 if count > 1 and tuple(waypoints[0]) == tuple(waypoints[-1]) else count
    total = 0.0
    previous = None
    for k in range(LOOKAHEAD_WAYPOINTS):
        a = waypoints[(start + k) % distinct]
        b = waypoints[(start + k + 1) % distinct]
        if a[0] == b[0] and a[1] == b[1]:
            continue
        direction = _direction_deg(a, b)
        if previous is not None:
            delta = (direction - previous + 180.0) % 360.0 - 180.0
            total += abs(delta)
        previous = direction
    return total


def reward_function(params):
    """Speed on straights, moderate speed plus centre line in corners."""
    if params.get("is_offtrack", False) or not params["all_wheels_on_track"]:
        return 1e-3

    speed = params["speed"]
    turn = _turn_ahead_deg(params["waypoints"], params["closest_waypoints"][1])
    centred = 1.0 - min(1.0, params["distance_from_center"] / (0.5 * params["track_width"]))

    if turn < STRAIGHT_MAX_TURN_DEG:
        reward = min(1.0, speed / TARGET_SPEED_MPS)
    else:
        corner_speed = CORNER_SPEED_FRACTION * TARGET_SPEED_MPS
        speed_score = max(0.0, 1.0 - abs(speed - corner_speed) / corner_speed)
        reward = 0.5 * speed_score + 0.5 * centred
    return max(1e-3, float(reward))
