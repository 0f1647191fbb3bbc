#!/usr/bin/env bash
# `make lock`: re-resolves the lock on purpose, to the newest versions pyproject.toml
# allows, for x86-64 and aarch64 Linux and Python 3.11-3.13 ([tool.uv] in pyproject.toml),
# and writes the two requirement files every install uses, with a hash for every file:
#   tools/requirements-all.txt   train, car, dev and bench extras (both README commands)
#   tools/requirements-car.txt   the car's extra only (its install line in the README)
# uv resolves into uv.lock, which stays out of git (it records download addresses); the
# requirement files carry versions, markers and hashes only, plus the digest of
# pyproject.toml's requirements that tools/install.sh checks. Commit them only with
# `make test` green.
set -euo pipefail
cd "$(dirname "$0")/.."
uv=build/uv/bin/uv
[ -x "$uv" ] || bash tools/install.sh --only-uv
"$uv" lock --upgrade
digest=$(python3 tools/lock_digest.py pyproject.toml)
for profile in all car; do
  if [ "$profile" = all ]; then extras=(--all-extras); else extras=(--extra car); fi
  out=tools/requirements-$profile.txt
  {
    echo "# openracer lock, profile '$profile': made by \`make lock\` (tools/lock.sh); do not edit."
    echo "# pyproject-digest: $digest"
    "$uv" export --frozen --no-emit-project --no-header --format requirements.txt "${extras[@]}"
  } >"$out.tmp"
  mv "$out.tmp" "$out"
  echo "lock: $out ($(grep -c '==' "$out") packages)"
done
