"""Car calibration: the data model and its store (no UI), and the Textual calibrator.

Runs on the car: no TensorFlow, albumentations or gymnasium. Uses `vehicle`, never the
training side.

- `model`: the calibration (steering, throttle, speed curve, battery compensation, camera)
  built on `vehicle.pulses`, validated on construction; no Textual.
- `store`: the JSON file with `schema_version`, migration, atomic saves with a backup.
- `deepracer`: DeepRacer `calibration.json` import/export (nanoseconds, polarity).
- `actuator`: the command stream to the car while calibrating (deadman, timed runs,
  neutral on stop/leave/link loss/crash) against the `CarLink` protocol; no Textual.
- `app`, `screens/`, `widgets`, `calibrator.tcss`: the Textual calibrator.
"""
