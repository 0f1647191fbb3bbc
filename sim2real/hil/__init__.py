"""Hardware-in-the-loop: the whole car simulated on a laptop, for `racer drive --sim` and
`racer calibrate --sim`.

- `board`: the real firmware under CPython on a simulated board behind a pty;
- `line`: that pty, with seeded byte faults and a cable that can be pulled;
- `physics`: servo, ESC, motor and drive battery (on `sim2real.battery`), and the
  calibration a careful session would find on them;
- `camera`: the simulator's camera on the simulated car, stepping the world and the laps;
- `session`: one drive (`hil_drive`, `run_hil`) with its report.

Importing this package imports none of its modules: `racer calibrate --sim` needs only the
board, not the renderer.
"""
