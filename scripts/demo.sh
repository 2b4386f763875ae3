#!/usr/bin/env bash
# The main job: set up .venv, then train and evaluate a model on the embedded default corpus.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
bash scripts/setup.sh
exec .venv/bin/softalign demo "$@"
