#!/usr/bin/env bash
# The README's main job on an embedded default. Grows as the layers land.
set -euo pipefail
out="${1:-demo-out}"
mkdir -p "$out"
racer tracks list
