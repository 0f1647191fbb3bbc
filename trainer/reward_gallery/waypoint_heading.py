"""Follow the direction of the track (openracer reward gallery).

Looks a few waypoints ahead of the car along `params['waypoints']`, computes the
direction from the car's previous waypoint to that look-ahead point, and pays for
pointing the car that way: 1.0 when the heading matches, falling linearly to 1e-3 at
`MAX_HEADING_ERROR_DEG` or more. Looking ahead (rather than along the current segment)
makes the car turn in before the corner instead of after it.

Uses `waypoints`, `closest_waypoints`, `heading`, `x`, `y` exactly as DeepRacer defines
them (heading in degrees, counter-clockwise from +x; waypoints in driving order). For
loop tracks the last waypoint repeats the first, so indices wrap modulo len - 1.

Copy this file and pass it to `racer train --reward FILE`. Standard library only; it
runs unchanged in the AWS DeepRacer console and deepracer-for-cloud.
"""

import math

LOOKAHEAD_WAYPOINTS = 3
"""How many waypoints ahead of the next one the target direction points."""
MAX_HEADING_ERROR_DEG = 30.0
"""Heading error (degrees) at which the reward reaches its floor."""


def reward_function(params):
    """1.0 when the car points at a waypoint a little ahead, less the more it turns away."""
    if params.get("is_offtrack", False) or not params["all_wheels_on_track"]:
        return 1e-3

    waypoints = params["waypoints"]
    _, next_index = params["closest_waypoints"]
    count = len(waypoints)
    # A loop repeats its first waypoint at the end: wrap over the distinct ones.
    distinct = count - 1 if count > 1 and tuple(waypoints[0]) == tuple(waypoints[-1]) else count
    target = waypoints[(next_index + LOOKAHEAD_WAYPOINTS) % distinct]

    track_direction_deg = math.degrees(math.atan2(target[1] - params["y"], target[0] - params["x"]))
    error = abs(track_direction_deg - params["heading"]) % 360.0
    if error > 180.0:
        error = 360.0 - error

    reward = 1.0 - error / MAX_HEADING_ERROR_DEG
    return max(1e-3, float(reward))
