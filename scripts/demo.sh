#!/usr/bin/env bash
# Set up, then run the main job on the built-in demo consortium.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
.venv/bin/ilp demo "$@"
