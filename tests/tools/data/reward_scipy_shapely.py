# A DeepRacer-style reward that uses scipy and shapely, which DeepRacer's simulator offers
# to reward functions. Written for openracer's tests (Apache-2.0).
from scipy.spatial import distance
from shapely.geometry import Point, Polygon


def reward_function(params):
    car = Point(params["x"], params["y"])
    waypoints = params["waypoints"]
    nxt = waypoints[params["closest_waypoints"][1]]
    near = distance.euclidean((params["x"], params["y"]), nxt)
    area = Polygon(waypoints[:3]).area if len(waypoints) > 3 else 0.0
    return float(1.0 / (1.0 + near) + 0.0 * area + 0.0 * car.x)
