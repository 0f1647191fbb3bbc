"""sim2real.laps.LapTracker on its own: golden cases on a synthetic lap (ndist and origin
given directly, no world), then the env and the HIL camera counting through it."""

from __future__ import annotations

import pytest

from sim2real.laps import LapInfo, LapTracker
from sim2real.params import IN_PROGRESS, LAP_COMPLETE, OFF_TRACK, REVERSED

ON = [True] * 4
OFF = [False] * 4
RATE_HZ = 15.0
CIRCLE_M = 15.0  # lap length: origin x = distance driven


def drive(tracker: LapTracker, start: float, fractions: list[float], t0_s: float = 0.0):
    """Feed the tracker one step per lap fraction (origin moving along a straight line
    proportional to the distance driven); returns the statuses."""
    out = []
    for k, nd in enumerate(fractions, 1):
        t = t0_s + k / RATE_HZ
        out.append(tracker.update(nd % 1.0, ((nd - start) * CIRCLE_M, 0.0), ON, t))
    return out


def steps(start: float, n: int, per_step: float) -> list[float]:
    return [start + per_step * k for k in range(1, n + 1)]


def started(start: float = 0.0) -> LapTracker:
    tracker = LapTracker()
    tracker.reset(start, (0.0, 0.0), 0.0)
    tracker.prepare(start)
    return tracker


def test_a_lap_completes_exactly_when_progress_wraps():
    per = 1.0 / 256  # exact in binary: the start line is reached on step 256 exactly
    tracker = started(0.25)
    statuses = drive(tracker, 0.25, steps(0.25, 260, per))
    assert statuses[:255] == [IN_PROGRESS] * 255
    assert tracker.progress.progress == 100.0
    assert statuses[255] == LAP_COMPLETE
    assert tracker.laps_completed == 1
    assert tracker.lap_times_s == [256 / RATE_HZ]
    # later steps without next_lap() keep reporting the completed lap, recorded once
    assert statuses[256:] == [LAP_COMPLETE] * 4
    assert tracker.laps_completed == 1


def test_lap_time_in_simulated_seconds_from_the_lap_start():
    tracker = started(0.0)
    drive(tracker, 0.0, [0.5, 0.999, 1.001], t0_s=0.0)  # 3 steps: 0.2 s of simulated time
    assert tracker.lap_times_s == [pytest.approx(3 / RATE_HZ)]
    assert tracker.info() == LapInfo((0.2,), 0.2, 0)
    tracker.next_lap()
    assert tracker.current_lap_s == 0.0
    assert tracker.progress.progress == 0.0
    statuses = drive(tracker, 0.0, [1.4, 1.8, 2.0005], t0_s=3 / RATE_HZ)
    assert statuses == [IN_PROGRESS, IN_PROGRESS, LAP_COMPLETE]
    assert tracker.lap_times_s[1] == pytest.approx(3 / RATE_HZ)
    assert tracker.laps_completed == 2 and tracker.info().laps_completed == 2


def test_reverse_driving_over_the_line_does_not_count():
    tracker = started(0.0)
    # backwards across the start line and on around the lap
    back = [-0.01 * k for k in range(1, 100)]
    statuses = drive(tracker, 0.0, back)
    assert LAP_COMPLETE not in statuses
    assert tracker.progress.progress < 0
    assert statuses[14] == REVERSED  # DeepRacer: 15 steps of falling progress
    assert tracker.laps_completed == 0


def test_back_and_forth_over_the_line_does_not_count():
    tracker = started(0.0)
    wiggle = [0.01, -0.01, 0.02, -0.02, 0.01, -0.005, 0.003]
    assert LAP_COMPLETE not in drive(tracker, 0.0, wiggle)
    assert tracker.laps_completed == 0


def test_off_track_status_and_put_back_keep_the_clock_and_progress():
    tracker = started(0.0)
    drive(tracker, 0.0, [0.1, 0.2])
    assert tracker.update(0.3, (4.5, 0.0), OFF, 0.2) == OFF_TRACK
    progress = tracker.progress.progress
    tracker.put_back((100.0, 100.0))
    assert tracker.off_track == 1 and tracker.progress.progress == progress
    # motion counts from where the car was put: standing there is "not moving"
    tracker.update(0.3, (100.0, 100.0), ON, 0.2 + 1 / RATE_HZ)
    assert tracker.progress.still_count == 1
    assert tracker.current_lap_s == pytest.approx(0.2 + 1 / RATE_HZ)


def test_reset_clears_laps_and_moves_the_clock():
    tracker = started(0.0)
    drive(tracker, 0.0, [0.5, 1.001])
    tracker.reset(0.5, (1.0, 2.0), 10.0)
    assert tracker.lap_times_s == [] and tracker.off_track == 0
    assert tracker.time_s == tracker.lap_start_s == 10.0
    assert tracker.progress.progress == 0.0 and tracker.progress.start_ndist == 0.5


def test_env_counts_laps_with_the_tracker():
    gym = pytest.importorskip("gymnasium")
    import sim2real  # noqa: F401  (registers the env)
    from sim2real.pure_pursuit import PurePursuit

    space = {"steering_angle": {"low": -30.0, "high": 30.0}, "speed": {"low": 0.5, "high": 3.0}}
    env = gym.make("openracer/Race-v0", track="reinvent_like", action_space=space, training=False)
    u = env.unwrapped
    _, info = env.reset(seed=0)
    expert = PurePursuit(u.world)
    lap_start_s = info["params"]["sim_time"]
    for lap in range(2):
        while True:
            _, _, term, trunc, info = env.step(expert.action_for(u.action_def))
            if term or trunc:
                break
        assert info["episode_status"] == LAP_COMPLETE
        assert u.laps.laps_completed == lap + 1
        sim_time_s = info["params"]["sim_time"]
        assert u.laps.lap_times_s[-1] == pytest.approx(sim_time_s - lap_start_s)
        assert 5.0 < u.laps.lap_times_s[-1] < 20.0
        lap_start_s = sim_time_s
        u.continue_lap()
    assert u.progress is u.laps.progress
    env.close()
