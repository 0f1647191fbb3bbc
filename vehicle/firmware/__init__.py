"""MicroPython motor-controller firmware for the RP2040, plus the one wire-protocol module.

Everything in this folder runs under MicroPython; `protocol.py` also runs under CPython
and is the host's only definition of the wire format.
"""
