# Imports fine but returns a string, which DeepRacer's simulator refuses (it must be a
# finite number within +-1e5). Written for openracer's tests (Apache-2.0).
import math


def reward_function(params):
    if params["distance_from_center"] > params["track_width"] / 2:
        return "off"
    return math.exp(-params["distance_from_center"])
