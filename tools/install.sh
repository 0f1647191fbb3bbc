#!/usr/bin/env bash
# Installs openracer into a virtual environment exactly as uv.lock pins it (versions and
# hashes), for both README commands (through `make`) and for the car's install line.
#
#   tools/install.sh                          # .venv with every extra (train car dev bench)
#   tools/install.sh --extras car --system-site-packages   # the car: sees apt's picamera2
#
# Steps: check the Python (3.11-3.13), bootstrap uv from tools/requirements-uv.txt (pip
# with --require-hashes) into build/uv, then `uv sync --locked`. Re-resolving the lock on
# purpose is `make lock`. Any failure prints one line saying what to do and exits 2.
set -euo pipefail
cd "$(dirname "$0")/.."

die() { echo "install: $*" >&2; exit 2; }

# The package index could not be reached: say so instead of a page of resolver output.
fail_with_log() {
  local log=$1 what=$2
  if grep -qiE 'name resolution|failed to establish|network is unreachable|dns error|error sending request|connection refused|timed out|failed to fetch|could not fetch url' "$log"; then
    tail -3 "$log" >&2
    die "$what: cannot reach the package index (pypi.org). Check the network or the proxy (HTTPS_PROXY), or point UV_INDEX_URL and PIP_INDEX_URL at a mirror, then run again"
  fi
  cat "$log" >&2
  die "$what failed (output above; the log is $log)"
}

python=${PYTHON:-python3}
venv=${VENV:-.venv}
extras=(train car dev bench)
system_site=()
while [ $# -gt 0 ]; do
  case $1 in
    --venv) venv=$2; shift 2 ;;
    --extras) read -ra extras <<<"$2"; shift 2 ;;
    --system-site-packages) system_site=(--system-site-packages); shift ;;
    *) die "unknown option '$1': use --venv DIR, --extras 'train car dev bench', --system-site-packages" ;;
  esac
done

command -v "$python" >/dev/null 2>&1 ||
  die "no '$python' on PATH: install Python 3.11, 3.12 or 3.13 (Debian: sudo apt install python3 python3-venv) or set PYTHON=/path/to/python3.11"
version=$("$python" -c 'import sys; print("%d.%d" % sys.version_info[:2])')
"$python" -c 'import sys; sys.exit(not (3, 11) <= sys.version_info[:2] <= (3, 13))' ||
  die "$python is Python $version, and openracer needs Python 3.11, 3.12 or 3.13 (TensorFlow and ai-edge-litert publish wheels for those). Install one and run again with PYTHON=python3.11"
"$python" -c 'import ensurepip, venv' 2>/dev/null ||
  die "$python cannot create virtual environments: install its venv module (Debian: sudo apt install python3-venv) and run again"

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

export UV_PROJECT_ENVIRONMENT="$venv" UV_PYTHON_DOWNLOADS=never
if [ ${#system_site[@]} -gt 0 ] && ! [ -x "$venv/bin/python" ]; then
  "$uv" venv --quiet --python "$python" --system-site-packages "$venv"
fi
extra_args=()
for e in "${extras[@]}"; do extra_args+=(--extra "$e"); done
echo "install: uv sync --locked ${extra_args[*]} into $venv (from uv.lock)"
# --locked: refuse to install if pyproject.toml changed and uv.lock was not re-resolved.
"$uv" sync --locked --python "$python" "${extra_args[@]}" 2>build/install-sync.log ||
  fail_with_log build/install-sync.log "uv sync"
grep -E '^(Installed|Uninstalled|Audited)' build/install-sync.log || true
