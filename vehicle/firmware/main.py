"""Motor-controller entry point on the RP2040: builds the board, starts the hardware
watchdog, and runs the controller loop forever (MicroPython runs main.py at boot).

The loop itself never raises (the controller counts errors); the watchdog is the last
resort if it ever hangs: it resets the board, which boots disarmed with the ESC at
neutral and reports FAULT_WATCHDOG_RESET until the next ARM.
"""

try:
    from vehicle.firmware.controller import Controller  # the host (CPython)
except ImportError:
    from controller import Controller  # type: ignore[no-redef,import-not-found]  # the board: flat files

_STATE_ARMED = 1  # protocol.STATE_ARMED


def run(board, stop=None):
    """Run the controller on `board` until `stop()` returns True (forever on the car).
    `board` provides uart, steering, throttle, battery, led, low_battery_mv,
    watchdog_reset(), watchdog(), ticks_ms() and sleep_ms()."""
    ctrl = Controller(
        board.uart,
        board.steering,
        board.throttle,
        board.battery,
        board.steering.pulse_us,
        board.throttle.pulse_us,
        board.low_battery_mv,
        1 if board.watchdog_reset() else 0,
        board.ticks_ms(),
    )
    board.controller = ctrl  # for whoever holds the board (the simulation inspects it)
    wdt = board.watchdog()
    led_state = -1
    while stop is None or not stop():
        ctrl.poll(board.ticks_ms())
        wdt.feed()
        armed = 1 if ctrl.state == _STATE_ARMED else 0
        if armed != led_state:
            led_state = armed
            try:
                board.led.value(armed)
            except Exception:
                ctrl.loop_errors += 1
        board.sleep_ms(1)
    return ctrl


def main():
    from board import Board  # type: ignore[import-not-found]

    run(Board())


if __name__ == "__main__":
    main()
