"""The motor controller's logic: wire messages in, pulse widths out, failsafe, telemetry.

MicroPython and CPython (tests, hardware-in-the-loop). Knows no pins: it gets a serial
port (`readinto`/`write`), two pulse outputs (`write_us`), a battery monitor (`update`)
and the time in milliseconds from the caller.

Safety rules:
- after boot, after DISARM and after any failsafe the ESC is at neutral and COMMANDs are
  ignored until an explicit ARM;
- while armed, if no valid COMMAND arrived for the failsafe timeout (100 ms unless ARM
  says otherwise; the check fires 2 ms early to absorb the loop period, so neutral is
  reached within the timeout), the throttle goes to neutral and the steering holds or centres (ARM
  flag), and the state becomes FAILSAFE;
- every pulse width is clamped to the limits sent with ARM;
- a corrupt frame never reaches here: the parser drops it on COBS, CRC or length.
`poll()` never raises: it counts exceptions in `loop_errors` and reports them.
"""

try:
    from micropython import const
except ImportError:  # CPython

    def const(x):  # type: ignore[no-redef,misc]
        return x


try:
    from vehicle.firmware import protocol  # the host (CPython)
except ImportError:
    import protocol  # type: ignore[no-redef,import-not-found]  # the board: flat files

FIRMWARE_VERSION = (1, 0, 0)
_TICKS_MASK = const(0x3FFFFFFF)  # MicroPython ticks_ms() wraps at 2**30
_TICKS_HALF = const(0x20000000)
_BATTERY_PERIOD_MS = const(20)
FAILSAFE_MARGIN_MS = const(2)  # loop period (1 ms sleep + work) + tick truncation
_RX_CHUNK = const(64)
_STICKY = const(0x005F)  # faults cleared by ARM (not LOW_BATTERY)


def ticks_diff(a, b):
    """a - b in ms, correct across the 2**30 wrap of ticks_ms()."""
    return ((a - b + _TICKS_HALF) & _TICKS_MASK) - _TICKS_HALF


class Controller:
    """State machine of the motor controller. Call `poll(now_ms)` in a tight loop."""

    def __init__(
        self,
        port,
        steering,
        throttle,
        battery,
        steer_center_us,
        throttle_neutral_us,
        low_battery_mv=0,
        boot_flags=0,
        now_ms=0,
    ):
        self.port = port
        self.steering = steering
        self.throttle = throttle
        self.battery = battery
        self.parser = protocol.Parser(protocol.TO_CONTROLLER)
        self.enc = protocol.Encoder()
        self.rx = bytearray(_RX_CHUNK)
        self._handler = self._on_message
        self.state = protocol.STATE_DISARMED
        self.faults = protocol.FAULT_WATCHDOG_RESET if boot_flags & 1 else 0
        self.boot_flags = boot_flags
        self.low_battery_mv = low_battery_mv
        self.boot_ms = now_ms
        self.now = now_ms
        # limits: until the first ARM, only the board's neutral pulses are allowed
        self.s_min = self.s_mid = self.s_max = steer_center_us
        self.t_min = self.t_mid = self.t_max = throttle_neutral_us
        self.timeout_ms = protocol.DEFAULT_TIMEOUT_MS
        self.center_on_failsafe = False
        self.last_cmd_ms = now_ms
        self.ever_commanded = False
        self.last_cmd_seq = 0
        self.loop_errors = 0
        self.failsafes = 0
        self.tx_seq = 0
        self.last_battery_ms = now_ms
        self.steering.write_us(self.s_mid)
        self.throttle.write_us(self.t_mid)

    # -- the loop ----------------------------------------------------------------------

    def poll(self, now_ms):
        """One iteration: read what arrived, act on valid frames, enforce the failsafe,
        sample the battery. Never raises."""
        self.now = now_ms
        try:
            n = self.port.readinto(self.rx)
            if n:
                self.parser.feed_into(self.rx, n, self._handler)
                if self.parser.overflows:
                    self.faults |= protocol.FAULT_RX_OVERFLOW
        except Exception:
            self._error()
        try:
            self.check_failsafe(now_ms)
        except Exception:
            self._error()
            self._neutral()
        try:
            if ticks_diff(now_ms, self.last_battery_ms) >= _BATTERY_PERIOD_MS:
                self.last_battery_ms = now_ms
                mv = self.battery.update()
                if mv < self.low_battery_mv:
                    self.faults |= protocol.FAULT_LOW_BATTERY
                else:
                    self.faults &= ~protocol.FAULT_LOW_BATTERY
        except Exception:
            self._error()

    def check_failsafe(self, now_ms):
        """Armed and the last COMMAND is `timeout_ms - FAILSAFE_MARGIN_MS` old or older:
        neutral, FAILSAFE. The margin covers the loop period and the 1 ms tick, so the
        throttle is at neutral no later than `timeout_ms` after the last command."""
        if self.state == protocol.STATE_ARMED:
            if ticks_diff(now_ms, self.last_cmd_ms) >= self.timeout_ms - FAILSAFE_MARGIN_MS:
                self.throttle.write_us(self.t_mid)
                if self.center_on_failsafe:
                    self.steering.write_us(self.s_mid)
                self.state = protocol.STATE_FAILSAFE
                self.faults |= protocol.FAULT_FAILSAFE
                self.failsafes += 1

    def _error(self):
        self.loop_errors += 1
        self.faults |= protocol.FAULT_LOOP_ERROR

    def _neutral(self):
        self.throttle.write_us(self.t_mid)
        if self.state == protocol.STATE_ARMED:
            self.state = protocol.STATE_FAILSAFE

    # -- messages ----------------------------------------------------------------------

    def _on_message(self, parser, msg_id):
        frame = parser.frame
        if msg_id == protocol.MSG_COMMAND:
            self._command(frame, parser.seq)
        elif msg_id == protocol.MSG_HEARTBEAT:
            self.send_telemetry()
        elif msg_id == protocol.MSG_ARM:
            self._arm(frame, parser.seq)
        elif msg_id == protocol.MSG_DISARM:
            self.state = protocol.STATE_DISARMED
            self.throttle.write_us(self.t_mid)
            self.steering.write_us(self.s_mid)
            self._send(self.enc.ack(self._next_seq(), msg_id, parser.seq, protocol.STATUS_OK))
        elif msg_id == protocol.MSG_HELLO:
            maj, mnr, pat = FIRMWARE_VERSION
            up = ticks_diff(self.now, self.boot_ms)
            self._send(self.enc.version(self._next_seq(), maj, mnr, pat, self.boot_flags, up))

    def _command(self, frame, seq):
        if self.state != protocol.STATE_ARMED:
            self.faults |= protocol.FAULT_CMD_DISARMED
            return
        steer, throttle = protocol.unpack_command(frame)
        if steer < self.s_min or steer > self.s_max:
            steer = self.s_min if steer < self.s_min else self.s_max
            self.faults |= protocol.FAULT_CLAMPED
        if throttle < self.t_min or throttle > self.t_max:
            throttle = self.t_min if throttle < self.t_min else self.t_max
            self.faults |= protocol.FAULT_CLAMPED
        self.steering.write_us(steer)
        self.throttle.write_us(throttle)
        self.last_cmd_ms = self.now
        self.last_cmd_seq = seq
        self.ever_commanded = True

    def _arm(self, frame, seq):
        s_min, s_mid, s_max, t_min, t_mid, t_max, timeout, flags = protocol.unpack_arm(frame)
        status = protocol.STATUS_OK
        lo = protocol.PULSE_MIN_US
        hi = protocol.PULSE_MAX_US
        if not (lo <= s_min < s_mid < s_max <= hi and lo <= t_min < t_mid < t_max <= hi):
            status = protocol.STATUS_BAD_LIMITS
        elif not protocol.TIMEOUT_MIN_MS <= timeout <= protocol.TIMEOUT_MAX_MS:
            status = protocol.STATUS_BAD_TIMEOUT
        if status == protocol.STATUS_OK:
            self.s_min, self.s_mid, self.s_max = s_min, s_mid, s_max
            self.t_min, self.t_mid, self.t_max = t_min, t_mid, t_max
            self.timeout_ms = timeout
            self.center_on_failsafe = bool(flags & protocol.FLAG_CENTER_ON_FAILSAFE)
            self.faults &= ~_STICKY
            self.parser.overflows = 0
            self.steering.write_us(s_mid)
            self.throttle.write_us(t_mid)
            self.last_cmd_ms = self.now  # the first COMMAND must come within the timeout
            self.state = protocol.STATE_ARMED
        self._send(self.enc.ack(self._next_seq(), protocol.MSG_ARM, seq, status))

    # -- output ------------------------------------------------------------------------

    def since_cmd_ms(self):
        if not self.ever_commanded:
            return 0xFFFF
        return min(ticks_diff(self.now, self.last_cmd_ms), 0xFFFF)

    def telemetry_values(self):
        return (
            self.state,
            self.faults,
            self.battery.mv,
            self.parser.good,
            self.parser.bad,
            self.since_cmd_ms(),
            self.steering.pulse_us,
            self.throttle.pulse_us,
            self.loop_errors,
            self.last_cmd_seq,
            ticks_diff(self.now, self.boot_ms),
            self.failsafes,
        )

    def send_telemetry(self):
        self._send(self.enc.telemetry(self._next_seq(), self.telemetry_values()))

    def _next_seq(self):
        self.tx_seq = (self.tx_seq + 1) & 0xFF
        return self.tx_seq

    def _send(self, n):
        self.port.write(memoryview(self.enc.out)[:n])
