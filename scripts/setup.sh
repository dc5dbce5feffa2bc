#!/usr/bin/env bash
# Idempotent setup on a fresh machine: a virtualenv in .venv with the project and its test tools, and the
# local FHIR server's Node packages (Node 22 itself comes from npm). Each part reinstalls only when its
# manifest changes; install logs are shown only when an install fails.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}

install_step() {  # name, stamp file, log file, command...
  local name=$1 stamp=$2 log=$3
  shift 3
  [ -f "$stamp" ] && return 0
  echo "setup: installing $name (a few minutes the first time)"
  if ! "$@" > "$log" 2>&1; then
    cat "$log"
    echo "setup: installing $name failed (log above, and in $log)" >&2
    exit 1
  fi
  rm -f "$(dirname "$stamp")"/.installed-*
  touch "$stamp"
}

[ -x .venv/bin/python ] || "$PYTHON" -m venv .venv
install_step "the project into .venv" ".venv/.installed-$(sha256sum pyproject.toml | cut -c1-16)" .venv/install.log \
  bash -c ".venv/bin/python -m pip install --upgrade pip && .venv/bin/python -m pip install -e '.[test]'"

# The Data Docs' scripts and styles, pinned to the versions GX links from CDNs, so the site works offline.
assets=expectations/assets
mkdir -p "$assets/node_modules"
install_step "the Data Docs' offline assets" "$assets/node_modules/.installed-$(sha256sum $assets/package-lock.json | cut -c1-16)" \
  "$assets/install.log" npm ci --prefix "$assets" --no-audit --no-fund --ignore-scripts

server=demo/fhir_server/server
mkdir -p "$server/node_modules"
install_step "the local FHIR server" "$server/node_modules/.installed-$(sha256sum $server/package-lock.json | cut -c1-16)" \
  "$server/install.log" npm ci --prefix "$server" --no-audit --no-fund

# Headless Chromium renders the analytics report in a test (Debian's package; needs root, as on CI).
if ! command -v chromium > /dev/null; then
  echo "setup: installing Debian's chromium (for the report rendering test)"
  if ! (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium) > .venv/apt.log 2>&1; then
    cat .venv/apt.log
    echo "setup: installing chromium failed (log above; run as root, or install it yourself)" >&2
    exit 1
  fi
fi

# R itself, for the differential tests of the statistics against R's survival and cmprsk (Debian's packages).
# Without root they cannot be installed: the tests then skip, saying so.
if ! (command -v Rscript > /dev/null && Rscript -e 'quit(status = !all(sapply(c("survival", "cmprsk"),
      requireNamespace, quietly = TRUE)))' > /dev/null 2>&1); then
  echo "setup: installing R with survival and cmprsk (for the differential tests against R)"
  if ! (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
        r-base-core r-cran-survival r-cran-cmprsk) > .venv/apt-r.log 2>&1; then
    echo "setup: R could not be installed (see .venv/apt-r.log); the tests against R will be skipped" >&2
  fi
fi
