"""The calibrator's screens, one per task: steering, throttle, speed, battery, camera,
review. Each is a `TaskScreen` (tabs, body, link status line, footer)."""
