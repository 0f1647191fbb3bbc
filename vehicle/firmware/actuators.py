"""Actuators of the motor controller: a 50 Hz pulse output (steering servo, ESC) and the
battery monitor (ADC behind a resistor divider).

MicroPython: hardware objects come in as pins from `board.py`; nothing here knows a pin
number. Pulse widths are integer microseconds.
"""

try:
    from micropython import const
except ImportError:  # CPython (the hardware-in-the-loop simulation)

    def const(x):  # type: ignore[no-redef,misc]
        return x


from machine import ADC, PWM

_PERIOD_HZ = const(50)
_ADC_FULL_SCALE = const(65535)


class PulseOutput:
    """One servo-style PWM channel: `write_us(pulse_us)` sets the pulse width."""

    def __init__(self, pin, initial_us, freq_hz=_PERIOD_HZ):
        self._pwm = PWM(pin)
        self._pwm.freq(freq_hz)
        self.pulse_us = 0
        self.write_us(initial_us)

    def write_us(self, pulse_us):
        if pulse_us != self.pulse_us:
            self._pwm.duty_ns(pulse_us * 1000)
            self.pulse_us = pulse_us


class BatteryMonitor:
    """Battery voltage through a divider R_top / R_bottom into an ADC pin, low-pass
    filtered (each sample moves the estimate 1/8 of the way)."""

    def __init__(self, pin, r_top_ohm, r_bottom_ohm, vref_mv=3300):
        self._adc = ADC(pin)
        # mV at the battery per ADC count, as a fraction: vref * (top + bottom) / bottom
        self._num = vref_mv * (r_top_ohm + r_bottom_ohm)
        self._den = _ADC_FULL_SCALE * r_bottom_ohm
        self.mv = self.sample_mv()

    def sample_mv(self):
        """One reading, millivolts at the battery."""
        return self._adc.read_u16() * self._num // self._den

    def update(self):
        """Take a sample into the filtered value; returns the filtered millivolts."""
        self.mv += (self.sample_mv() - self.mv) // 8
        return self.mv
