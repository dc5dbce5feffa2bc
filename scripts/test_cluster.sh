#!/usr/bin/env bash
# The transform on Spark's local-cluster[2,1,1024] (two separate executor JVMs) must give the same tables as in
# local mode: nothing may rely on driver-side state. Kept out of the default suite (about 3 minutes on 2 cores).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
.venv/bin/python -m pytest -m cluster "$@"
