#!/usr/bin/env bash
# Installs what the tests need beyond Python packages, on a fresh Debian machine:
#   - OpenSSH server (the flashing tests start a real sshd on 127.0.0.1),
#   - tmux (end-to-end tests of the terminal UIs),
#   - Node.js + the npm package that runs a real MicroPython interpreter (firmware tests).
# Idempotent: does nothing for what is already there.
set -euo pipefail
cd "$(dirname "$0")/.."

need_apt=()
command -v sshd >/dev/null 2>&1 || [ -x /usr/sbin/sshd ] || need_apt+=(openssh-server)
command -v ssh >/dev/null 2>&1 || need_apt+=(openssh-client)
command -v tmux >/dev/null 2>&1 || need_apt+=(tmux)
command -v node >/dev/null 2>&1 || need_apt+=(nodejs)
command -v npm >/dev/null 2>&1 || need_apt+=(npm)
command -v ffmpeg >/dev/null 2>&1 || true
if [ ${#need_apt[@]} -gt 0 ]; then
  echo "installing Debian packages: ${need_apt[*]}"
  SUDO=""
  [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${need_apt[@]}" >/dev/null
fi

if [ -f tests/micropython/package.json ] && [ ! -d tests/micropython/node_modules ]; then
  echo "installing the MicroPython (WebAssembly) interpreter from npm"
  (cd tests/micropython && npm install --no-audit --no-fund --silent)
fi
