#!/usr/bin/env bash
# Set up .venv (with the test extras) and run the whole test suite.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
bash scripts/setup.sh
# the browser test drives Debian's chromium (never a downloaded browser); it skips without it
if [ ! -x /usr/bin/chromium ] && command -v apt-get >/dev/null && [ "$(id -u)" = 0 ]; then
  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium) >/dev/null 2>&1 \
    || echo "chromium could not be installed: the browser test will be skipped"
fi
# the aarch64 build of the C kernels is checked under qemu (tests/unit/test_native_harness.py);
# Debian's cross compiler and qemu-user, ~10 s to install; without them that test skips
if [ "$(uname -m)" = x86_64 ] && command -v apt-get >/dev/null && [ "$(id -u)" = 0 ] \
  && ! { command -v qemu-aarch64 && command -v aarch64-linux-gnu-gcc; } >/dev/null; then
  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
    gcc-aarch64-linux-gnu qemu-user libc6-dev-arm64-cross) >/dev/null 2>&1 \
    || echo "the aarch64 cross toolchain could not be installed: its kernel test will be skipped"
fi
exec .venv/bin/python -m pytest -q "$@"
