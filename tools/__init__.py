"""The `racer` command line and scripts: flash, analyze, bench. May import anything, lazily."""
