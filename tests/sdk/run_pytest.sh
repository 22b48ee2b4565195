#!/bin/sh
# Runs the Python SDK's tests (sdk/python/tests) with pytest against the fastgpu binary in FASTGPU_BIN.
# Exits 77 (CTest: skipped) when the interpreter has no pytest, and only then.
# Usage: run_pytest.sh PYTHON [pytest args...]
PY=${1:-python3}
shift
if ! command -v "$PY" >/dev/null 2>&1; then
  echo "skipped: no Python interpreter '$PY' (apt-get install python3 python3-pytest)"
  exit 77
fi
if ! "$PY" -c 'import pytest' >/dev/null 2>&1; then
  echo "skipped: $PY has no pytest (apt-get install python3-pytest)"
  exit 77
fi
export PYTHONDONTWRITEBYTECODE=1
exec "$PY" -m pytest -q -p no:cacheprovider "$@"
