#!/usr/bin/env bash
# Idempotent setup on a fresh machine: a virtualenv in .venv with the project and its test tools.
# Reinstalls only when pyproject.toml changes; the pip log is shown only when the install fails.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  "$PYTHON" -m venv .venv
fi
stamp=.venv/.installed-$(sha256sum pyproject.toml | cut -c1-16)
if [ ! -f "$stamp" ]; then
  echo "setup: installing the project and its dependencies into .venv (a few minutes the first time)"
  if ! { .venv/bin/python -m pip install --upgrade pip && .venv/bin/python -m pip install -e '.[test]'; } \
      > .venv/install.log 2>&1; then
    cat .venv/install.log
    echo "setup: pip install failed (log above, and in .venv/install.log)" >&2
    exit 1
  fi
  rm -f .venv/.installed-*
  touch "$stamp"
fi
