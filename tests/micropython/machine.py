"""Stand-in for MicroPython's `machine` module in the firmware tests (runs under real
MicroPython and CPython): pins that remember what the firmware did to them."""


class Pin:
    OUT = 1
    IN = 0

    def __init__(self, name, mode=0):
        self.name = name
        self.level = 0
        self.duty_ns = 0
        self.freq_hz = 0
        self.adc_u16 = 0
        self.history = []

    def value(self, v=None):
        if v is not None:
            self.level = v
        return self.level


class PWM:
    def __init__(self, pin):
        self.pin = pin

    def freq(self, hz=None):
        if hz is not None:
            self.pin.freq_hz = hz
        return self.pin.freq_hz

    def duty_ns(self, ns=None):
        if ns is not None:
            self.pin.duty_ns = ns
            self.pin.history.append(ns // 1000)
        return self.pin.duty_ns


class ADC:
    def __init__(self, pin):
        self.pin = pin

    def read_u16(self):
        return self.pin.adc_u16
