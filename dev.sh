#!/usr/bin/env bash
# Konsulta's two everyday commands, each installing what it needs on a fresh machine:
#   ./dev.sh demo   start the service with demo data on the embedded SQLite default
#   ./dev.sh test   run the whole test suite, in parallel (./dev.sh test tests/x.py: one file)
set -euo pipefail
cd "$(dirname "$0")"

PY=${PYTHON:-python3}
VENV=.venv

ensure_venv() {
  if [ ! -x "$VENV/bin/python" ]; then
    "$PY" -m venv "$VENV"
  fi
  # Reinstall when the dependencies or their tested versions (constraints.txt) change.
  local stamp="$VENV/.konsulta-installed"
  if [ ! -f "$stamp" ] || [ pyproject.toml -nt "$stamp" ] || [ constraints.txt -nt "$stamp" ]; then
    echo "Installing Konsulta and its dependencies into $VENV ..." >&2
    if ! { "$VENV/bin/python" -m pip install --quiet --upgrade pip &&
           "$VENV/bin/python" -m pip install --quiet -c constraints.txt -e ".[test]"; } > "$VENV/install.log" 2>&1; then
      cat "$VENV/install.log" >&2
      exit 1
    fi
    touch "$stamp"
  fi
}

case "${1:-}" in
  demo)
    ensure_venv
    shift
    # An existing database is never upgraded by the server itself: bring it to this code's schema.
    "$VENV/bin/consult" db upgrade > /dev/null
    exec "$VENV/bin/consult" serve --demo "$@"
    ;;
  test)
    ensure_venv
    shift
    # The browser tests inject axe-core from npm and ESLint (npm) lints web/js; without npm (or
    # Chromium) they skip, except in CI.
    if { [ ! -f node_modules/axe-core/axe.min.js ] || [ ! -x node_modules/.bin/eslint ]; } &&
       command -v npm >/dev/null 2>&1; then
      npm ci --no-audit --no-fund --loglevel=error >&2 || echo "npm ci failed: browser tests and ESLint will skip" >&2
    fi
    # Temporary files (a database per test, fsynced at every commit) go to memory when /dev/shm has
    # room for them (2 GiB); a TMPDIR of the caller's own wins.
    if [ -z "${TMPDIR:-}" ] && [ -d /dev/shm ] && [ -w /dev/shm ] &&
       [ "$(df -Pk /dev/shm | awk 'NR == 2 {print $4}')" -ge 2097152 ]; then
      export TMPDIR=/dev/shm
    fi
    # One worker per CPU, a test file per worker at a time (its module fixtures are made once);
    # KONSULTA_TEST_WORKERS=0 runs in this one process (for --pdb or -s), and a -n given here wins.
    exec "$VENV/bin/python" -m pytest -n "${KONSULTA_TEST_WORKERS:-auto}" --dist loadfile "$@"
    ;;
  *)
    echo "usage: ./dev.sh demo [--port N] | ./dev.sh test [pytest args]" >&2
    exit 2
    ;;
esac
