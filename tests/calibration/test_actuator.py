"""The calibrator's actuator: deadman, timed runs, neutral on stop/leave/link loss."""

from __future__ import annotations

import threading

from calibration.actuator import Actuator, ActuatorConfig
from calibration.model import Calibration
from tests.calibration.fakes import FakeClock, FakeLink

NEUTRAL = Calibration().throttle.neutral_us  # 1446
CENTRE = Calibration().steering.mid_us  # 1450


def _make() -> tuple[Actuator, FakeLink, FakeClock]:
    link, clock = FakeLink(), FakeClock()
    act = Actuator(link, Calibration().pulses(), config=ActuatorConfig(deadman_s=0.25), clock=clock)
    return act, link, clock


def test_first_tick_arms_with_calibration_limits_then_commands_neutral() -> None:
    act, link, _ = _make()
    status = act.tick()
    assert link.names() == ["arm", "command"]
    limits = link.calls[0][1]
    assert (limits.steering.min_us, limits.steering.mid_us, limits.steering.max_us) == (
        500,
        CENTRE,
        2500,
    )
    assert limits.throttle.mid_us == NEUTRAL
    assert link.last_command() == (CENTRE, NEUTRAL)
    assert status.link_state == "ok" and status.battery_v == 7.6 and not status.moving


def test_deadman_returns_to_neutral_when_repeats_stop() -> None:
    act, link, clock = _make()
    act.hold(1400)
    act.tick()
    assert link.last_command() == (CENTRE, 1400)
    # key auto-repeat every 40 ms keeps it running
    for _ in range(10):
        clock.advance(0.04)
        act.hold(1400)
        assert act.tick().moving
    # no repeat: still running inside the window, neutral after it
    clock.advance(0.2)
    assert act.tick().throttle_us == 1400
    clock.advance(0.06)
    status = act.tick()
    assert status.throttle_us == NEUTRAL and not status.moving
    assert link.last_command() == (CENTRE, NEUTRAL)


def test_timed_run_ends_by_itself_and_stop_cancels_it() -> None:
    act, link, clock = _make()
    act.run_for(1380, 2.0)
    s = act.tick()
    assert s.throttle_us == 1380 and s.run_remaining_s == 2.0
    clock.advance(1.5)
    assert act.tick().throttle_us == 1380
    clock.advance(0.51)
    assert act.tick().throttle_us == NEUTRAL
    act.run_for(1380, 99.0)  # capped at max_run_s
    assert act.tick().run_remaining_s == ActuatorConfig().max_run_s
    act.stop()
    assert act.tick().throttle_us == NEUTRAL


def test_a_timed_run_counts_from_its_first_command_not_from_the_request() -> None:
    # the worker thread held back 0.7 s (a busy machine) must not shorten a 0.5 s run: the
    # speed test records the duration it asked for
    act, link, clock = _make()
    act.tick()
    act.run_for(1380, 0.5)
    clock.advance(0.7)
    s = act.tick()
    assert s.throttle_us == 1380 and s.run_remaining_s == 0.5
    assert link.last_command() == (CENTRE, 1380)
    clock.advance(0.45)
    assert act.tick().throttle_us == 1380
    clock.advance(0.06)
    s = act.tick()
    assert s.throttle_us == NEUTRAL and s.run_remaining_s is None


def test_a_timed_run_waits_for_a_lost_link_without_ending() -> None:
    act, link, clock = _make()
    act.tick()
    link.fail = True
    assert act.tick().link_state == "lost"
    act.run_for(1380, 0.5)  # asked for while the link is down
    link.fail = False
    s = act.tick()  # this tick finds the link back: neutral, the run still to come
    assert s.throttle_us == NEUTRAL and s.run_remaining_s == 0.5 and s.link_state == "ok"
    clock.advance(1.0)
    s = act.tick()
    assert s.throttle_us == 1380 and s.run_remaining_s == 0.5


def test_neutral_centres_steering_and_set_neutral_rearms() -> None:
    act, link, _ = _make()
    act.steer(1600)
    act.hold(1400)
    assert act.tick().steer_us == 1600
    act.neutral()
    assert link.last_command() != (CENTRE, NEUTRAL)  # not sent until the next tick
    assert act.tick().steer_us == CENTRE and link.last_command() == (CENTRE, NEUTRAL)
    act.set_neutral(1470, 1500)
    act.tick()
    assert link.names()[-2:] == ["arm", "command"]
    assert link.calls[-2][1].throttle.mid_us == 1500
    assert link.last_command() == (CENTRE, 1500)  # steering stays where it was


def test_link_loss_stops_the_motor_and_is_reported() -> None:
    act, link, clock = _make()
    act.hold(1400)
    act.tick()
    link.fail = True
    status = act.tick()
    assert status.link_state == "lost" and "no reply" in (status.error or "")
    assert link.names()[-1] == "neutral"
    # the hold was cancelled: when the link comes back the motor does not restart
    link.fail = False
    clock.advance(0.01)
    status = act.tick()
    assert status.link_state == "ok" and status.throttle_us == NEUTRAL
    assert link.names()[-2:] == ["arm", "command"]  # re-armed after the loss


def test_loop_shuts_down_to_neutral_and_disarms() -> None:
    link = FakeLink()
    act = Actuator(link, Calibration().pulses(), config=ActuatorConfig(period_s=0.001))
    stop = threading.Event()
    posted = []

    def post(status: object) -> None:
        posted.append(status)
        if len(posted) >= 2:
            stop.set()

    act.hold(1400)  # the status changes when the deadman expires: two posts
    act.loop(post, stop)
    assert [p.moving for p in posted] == [True, False]
    assert link.names()[-2:] == ["neutral", "disarm"]
    act.shutdown()  # idempotent
    assert link.names().count("disarm") == 1


def test_firmware_failsafe_stops_the_hold_and_rearms() -> None:
    """The firmware's own 100 ms failsafe tripped (this host stalled): the hold is dropped,
    so the motor does not restart by itself, and the firmware is armed again at neutral."""
    import time
    from dataclasses import dataclass

    @dataclass
    class Telem:
        state: str
        received_s: float
        battery_mv: int = 7600

    act, link, clock = _make()
    link.latest = Telem("armed", 0.0)
    link.latest_telemetry = lambda: link.latest  # type: ignore[attr-defined]
    act.tick()  # arms
    act.hold(1400)
    assert act.tick().throttle_us == 1400
    link.latest = Telem("failsafe", time.monotonic() + 1.0)
    status = act.tick()
    assert status.throttle_us == NEUTRAL and status.dropouts == 1
    assert link.last_command() == (CENTRE, NEUTRAL)
    clock.advance(0.02)
    act.tick()
    assert link.names()[-2:] == ["arm", "command"]
    assert act.tick().throttle_us == NEUTRAL  # still no motion without a new key press
