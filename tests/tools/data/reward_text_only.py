# Mentions "def reward_function" only in this comment and defines reward() instead: the
# old text search accepted it. Written for openracer's tests (Apache-2.0).


def reward(params):
    return 1.0
