#!/usr/bin/env bash
# The one CI entry: a function per job. `make test` runs `ci/run.sh all`; `make demo` runs `ci/run.sh demo`.
# Every job first makes sure its environment exists (Debian packages when root, the .venv, the package).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
VENV=${SHOAL_VENV:-$ROOT/.venv}
PY=$VENV/bin/python
DEBIAN_PACKAGES=(gcc-arm-none-eabi libnewlib-arm-none-eabi qemu-system-arm mosquitto)

log() { printf '\n== %s\n' "$*"; }

setup_debian() {
  local missing=()
  for pkg in "${DEBIAN_PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  if [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null; then
    log "installing Debian packages: ${missing[*]}"
    apt-get update -q >/dev/null
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}" >/dev/null
  else
    echo "note: not root (or no apt-get); missing Debian packages: ${missing[*]}." >&2
    echo "      Tests that need them skip and say so. Install them with: sudo apt-get install ${missing[*]}" >&2
  fi
}

setup_venv() {
  if [ ! -x "$PY" ]; then
    log "creating virtual environment $VENV"
    python3 -m venv "$VENV"
  fi
  local stamp=$VENV/.shoal-installed
  if [ ! -f "$stamp" ] || [ pyproject.toml -nt "$stamp" ] || [ setup.py -nt "$stamp" ]; then
    log "installing shoal[dev] into $VENV"
    "$PY" -m pip install -q --upgrade pip >/dev/null
    "$PY" -m pip install -q -e ".[dev]"
    touch "$stamp"
  fi
}

setup() { setup_debian; setup_venv; }

lint() {
  log "ruff"
  "$VENV/bin/ruff" check .
  "$VENV/bin/ruff" format --check .
}

types() {
  log "mypy"
  "$VENV/bin/mypy" codegen host_sdk
}

pytest_job() {
  # pytest exit code 5 means "no tests collected": for a job that expects tests that is a failure.
  local rc=0
  "$PY" -m pytest "$@" || rc=$?
  if [ "$rc" -eq 5 ]; then
    echo "error: pytest collected no tests for: $*" >&2
    return 1
  fi
  return "$rc"
}

tests() {
  log "pytest"
  pytest_job -p no:cacheprovider -q tests "$@"
}

demo() {
  setup
  local shoal=$VENV/bin/shoal model=tests/data/shoal_kws_tiny.tflite
  log "shoal doctor: what this machine can run"
  "$shoal" doctor
  log "shoal boards"
  "$shoal" boards
  log "shoal check $model --board qemu-mps2-an386"
  "$shoal" check "$model" --board qemu-mps2-an386
  log "shoal gen-model $model -o build/demo/kws"
  "$shoal" gen-model "$model" -o build/demo/kws
  log "shoal verify $model --sources build/demo/kws: the generated C next to TFLM on the host"
  "$shoal" verify "$model" --sources build/demo/kws --seed 1
  log "shoal spec check examples/roles/fleet.yaml: agent roles"
  "$shoal" spec check examples/roles/fleet.yaml
  log "shoal gen examples/roles/kws.yaml -o build/demo/agent-kws, then make: a native agent"
  "$shoal" gen examples/roles/kws.yaml -o build/demo/agent-kws
  make -s -C build/demo/agent-kws
}

all() {
  setup
  lint
  types
  tests "$@"
}

job=${1:-all}
shift || true
case "$job" in
  setup | lint | types | tests | demo | all) "$job" "$@" ;;
  *)
    echo "usage: ci/run.sh [setup|lint|types|tests|demo|all] [pytest args]" >&2
    exit 2
    ;;
esac
