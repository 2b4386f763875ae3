#!/usr/bin/env bash
# Create or reuse .venv and install softalign with its extras. Idempotent: a second run only
# checks a stamp (the hash of pyproject.toml) and returns at once.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"
python=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  "$python" -m venv .venv
fi
stamp=.venv/.softalign-installed
want=$(sha256sum pyproject.toml | cut -d' ' -f1)
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
  .venv/bin/python -m pip install -q --disable-pip-version-check --upgrade pip >/dev/null
  # torch first, pinned: an unpinned torch would pull several GB of CUDA packages
  .venv/bin/python -m pip install -q --disable-pip-version-check "torch==2.13.0"
  .venv/bin/python -m pip install -q --disable-pip-version-check -e ".[${SOFTALIGN_EXTRAS:-dev,serve,bible}]"
  echo "$want" > "$stamp"
fi
