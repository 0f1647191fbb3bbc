"""The one place that knows the motor controller's pins (Raspberry Pi Pico / RP2040).

Wiring:
- UART0 TX GP0 / RX GP1 to the car computer's serial port (Pi: /dev/serial0), 115200 8N1;
- steering servo signal on GP14, ESC signal on GP15 (50 Hz PWM);
- battery + through a 20 kOhm / 10 kOhm divider into GP26 (ADC0): 3x, so a 2S LiPo
  (8.4 V full) reads 2.8 V at the pin;
- the on-board LED on "LED" shows the state (on = armed).
Neutral pulses before the first ARM are DeepRacer's factory centre / neutral.
"""

import time

from machine import UART, WDT, Pin, reset_cause
from micropython import const

try:
    from vehicle.firmware.actuators import BatteryMonitor, PulseOutput  # type checking
except ImportError:
    from actuators import BatteryMonitor, PulseOutput  # type: ignore[no-redef,import-not-found]  # the board

UART_ID = const(0)
UART_TX = const(0)
UART_RX = const(1)
BAUD = const(115200)
STEERING_PIN = const(14)
THROTTLE_PIN = const(15)
BATTERY_ADC_PIN = const(26)
DIVIDER_TOP_OHM = const(20000)
DIVIDER_BOTTOM_OHM = const(10000)
STEER_CENTER_US = const(1450)
THROTTLE_NEUTRAL_US = const(1446)
LOW_BATTERY_MV = const(6400)
WATCHDOG_MS = const(500)


class Board:
    """The hardware objects the controller drives, created once."""

    def __init__(self):
        self.uart = UART(
            UART_ID, baudrate=BAUD, tx=Pin(UART_TX), rx=Pin(UART_RX), rxbuf=512, timeout=0
        )
        self.steering = PulseOutput(Pin(STEERING_PIN), STEER_CENTER_US)
        self.throttle = PulseOutput(Pin(THROTTLE_PIN), THROTTLE_NEUTRAL_US)
        self.battery = BatteryMonitor(Pin(BATTERY_ADC_PIN), DIVIDER_TOP_OHM, DIVIDER_BOTTOM_OHM)
        self.led = Pin("LED", Pin.OUT)
        self.low_battery_mv = LOW_BATTERY_MV
        self.controller = None  # set by main.run

    def ticks_ms(self):
        return time.ticks_ms()

    def sleep_ms(self, ms):
        time.sleep_ms(ms)

    def watchdog_reset(self):
        """True if the last reset came from the hardware watchdog."""
        import machine

        return reset_cause() == machine.WDT_RESET

    def watchdog(self):
        """Start the hardware watchdog (cannot be stopped once started)."""
        return WDT(timeout=WATCHDOG_MS)
