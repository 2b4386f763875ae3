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
exec .venv/bin/python -m pytest -q "$@"
