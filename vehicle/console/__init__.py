"""The `racer drive` Textual console: the app (`app.py`), its screens and live figures,
one `console.tcss`, and the half-block camera view the calibrator shares
(`terminal_view.py`). Importing the package imports none of its modules (no Textual)."""
