"""The car runtime: camera, preprocessing, inference, serial link, drive loop, safety.

Runs on the Raspberry Pi: imports no TensorFlow, albumentations or gymnasium, and none of
`tracks`, `sim2real`, `trainer`. What the car and training must agree on (observation
preprocessing, action decoding, the control rate) lives here once; training imports it.
"""
