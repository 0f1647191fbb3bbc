"""Car calibration: the data model and its store (no UI), and the Textual calibrator.

Runs on the car: no TensorFlow, albumentations or gymnasium. Uses `vehicle`, never the
training side.
"""
