#!/usr/bin/env bash
# Installs openracer into a virtual environment exactly as the lock pins it (versions and
# hashes), for both README commands (through `make`) and for the car's install line.
#
#   tools/install.sh                                   # .venv, profile all (train car dev bench)
#   tools/install.sh --profile car --system-site-packages   # the car: sees apt's picamera2
#
# Steps: check the Python (3.11-3.13); bootstrap uv from tools/requirements-uv.txt (pip
# with --require-hashes) into build/uv; check that tools/requirements-PROFILE.txt was made
# from the present pyproject.toml; `uv pip sync --require-hashes` it into the venv (exactly
# those packages, nothing else); install openracer itself, editable, without dependencies.
# Re-resolving the lock on purpose is `make lock` (tools/lock.sh). Any failure prints one
# line saying what to do and exits 2.
set -euo pipefail
cd "$(dirname "$0")/.."

die() { echo "install: $*" >&2; exit 2; }

# The package index could not be reached: say so instead of a page of resolver output.
fail_with_log() {
  local log=$1 what=$2
  if grep -qiE 'name resolution|failed to establish|network is unreachable|dns error|error sending request|connection refused|timed out|failed to fetch|could not fetch url' "$log"; then
    tail -3 "$log" >&2
    die "$what: cannot reach the Python package index. Check the network or the proxy (HTTPS_PROXY), or point UV_INDEX_URL and PIP_INDEX_URL at a mirror, then run again"
  fi
  cat "$log" >&2
  die "$what failed (output above; the log is $log)"
}

python=${PYTHON:-python3}
venv=${VENV:-.venv}
profile=all
system_site=()
only_uv=0
while [ $# -gt 0 ]; do
  case $1 in
    --venv) venv=$2; shift 2 ;;
    --profile) profile=$2; shift 2 ;;
    --system-site-packages) system_site=(--system-site-packages); shift ;;
    --only-uv) only_uv=1; shift ;;
    *) die "unknown option '$1': use --venv DIR, --profile all|car, --system-site-packages" ;;
  esac
done
requirements=tools/requirements-$profile.txt
[ -f "$requirements" ] || die "--profile $profile: no $requirements; the profiles are all (the laptop: train, car, dev, bench) and car"

command -v "$python" >/dev/null 2>&1 ||
  die "no '$python' on PATH: install Python 3.11, 3.12 or 3.13 (Debian: sudo apt install python3 python3-venv) or set PYTHON=/path/to/python3.11"
version=$("$python" -c 'import sys; print("%d.%d" % sys.version_info[:2])')
"$python" -c 'import sys; sys.exit(not (3, 11) <= sys.version_info[:2] <= (3, 13))' ||
  die "$python is Python $version, and openracer needs Python 3.11, 3.12 or 3.13 (TensorFlow and ai-edge-litert publish wheels for those). Install one and run again with PYTHON=python3.11"
"$python" -c 'import ensurepip, venv' 2>/dev/null ||
  die "$python cannot create virtual environments: install its venv module (Debian: sudo apt install python3-venv) and run again"

if [ "$only_uv" = 0 ]; then
  # The lock must have been made from the present pyproject.toml.
  want_digest=$("$python" tools/lock_digest.py pyproject.toml)
  have_digest=$(sed -n 's/^# pyproject-digest: //p' "$requirements")
  [ "$want_digest" = "$have_digest" ] ||
    die "pyproject.toml's requirements changed since $requirements was made: run \`make lock\` (re-resolves the lock) and commit tools/requirements-*.txt"
fi

mkdir -p build
uvenv=build/uv
uv=$uvenv/bin/uv
want=$(sed -n 's/^uv==\([^ ]*\).*/\1/p' tools/requirements-uv.txt)
if ! [ -x "$uv" ] || [ "$("$uv" --version 2>/dev/null | cut -d' ' -f2)" != "$want" ]; then
  echo "install: uv $want into $uvenv"
  rm -rf "$uvenv"
  "$python" -m venv "$uvenv"
  "$uvenv/bin/python" -m pip install --quiet --disable-pip-version-check --require-hashes \
    -r tools/requirements-uv.txt >build/install-uv.log 2>&1 || fail_with_log build/install-uv.log "installing uv"
fi

[ "$only_uv" = 1 ] && exit 0

export UV_PYTHON_DOWNLOADS=never
if ! [ -x "$venv/bin/python" ]; then
  "$uv" venv --quiet --python "$python" "${system_site[@]}" "$venv" 2>build/install-venv.log ||
    fail_with_log build/install-venv.log "creating $venv"
fi
echo "install: $requirements into $venv (uv pip sync --require-hashes)"
"$uv" pip sync --python "$venv/bin/python" --require-hashes "$requirements" 2>build/install-sync.log ||
  fail_with_log build/install-sync.log "uv pip sync"
grep -E '^(Installed|Uninstalled|Audited)' build/install-sync.log || true
"$uv" pip install --python "$venv/bin/python" --no-deps --editable . 2>build/install-project.log ||
  fail_with_log build/install-project.log "installing openracer itself"
