#!/usr/bin/env bash
# Installs what the tests need beyond Python packages, on a fresh Debian machine:
#   - OpenSSH server (the flashing tests start a real sshd on 127.0.0.1),
#   - tmux (end-to-end tests of the terminal UIs),
#   - Node.js + the npm package that runs a real MicroPython interpreter (firmware tests),
#     installed exactly as tests/micropython/package-lock.json pins it (`npm ci`).
# Idempotent: does nothing for what is already there. Any failure prints one line saying
# what to do and exits 2.
set -euo pipefail
cd "$(dirname "$0")/.."

die() { echo "test-deps: $*" >&2; exit 2; }

need_apt=()
command -v sshd >/dev/null 2>&1 || [ -x /usr/sbin/sshd ] || need_apt+=(openssh-server)
command -v ssh >/dev/null 2>&1 || need_apt+=(openssh-client)
command -v tmux >/dev/null 2>&1 || need_apt+=(tmux)
command -v node >/dev/null 2>&1 || need_apt+=(nodejs)
command -v npm >/dev/null 2>&1 || need_apt+=(npm)
if [ ${#need_apt[@]} -gt 0 ]; then
  command -v apt-get >/dev/null 2>&1 ||
    die "this is not a Debian-like machine (no apt-get): install ${need_apt[*]} with its package manager, then run again"
  sudo=()
  if [ "$(id -u)" -ne 0 ]; then
    command -v sudo >/dev/null 2>&1 ||
      die "installing ${need_apt[*]} needs root, and there is no sudo: run 'apt-get install -y ${need_apt[*]}' as root, then run again"
    # -n: never wait for a password prompt nobody can see (CI, no terminal)
    if [ -t 0 ]; then sudo=(sudo); else sudo=(sudo -n); fi
  fi
  echo "test-deps: installing Debian packages: ${need_apt[*]}"
  log=$(mktemp)
  if ! { "${sudo[@]}" apt-get update -qq && DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get install -y -qq "${need_apt[@]}"; } >"$log" 2>&1; then
    cat "$log" >&2
    if grep -qiE 'password is required|a terminal is required|not in the sudoers' "$log"; then
      die "installing ${need_apt[*]} needs root: run 'sudo apt-get install -y ${need_apt[*]}' once yourself, then run again"
    fi
    die "apt-get could not install ${need_apt[*]} (output above): check the network and the apt sources, or install them by hand, then run again"
  fi
  rm -f "$log"
fi

if [ -f tests/micropython/package-lock.json ] && [ ! -d tests/micropython/node_modules ]; then
  echo "test-deps: installing the MicroPython (WebAssembly) interpreter from npm (package-lock.json)"
  (cd tests/micropython && npm ci --no-audit --no-fund --silent) ||
    die "npm could not install tests/micropython's packages: check the network to the npm registry (or npm's proxy settings), then run again"
fi
