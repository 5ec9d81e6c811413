#!/usr/bin/env bash
# Install what the test suite needs (scripts/bootstrap.sh), then run all of it:
# ruff, mypy (strict, Python 3.9 rules) and pytest.
# Extra arguments go to pytest, e.g. `bash tests/run.sh -k codec`.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/bootstrap.sh

echo "== ruff"
"$venv/bin/ruff" check agentx_virt tests bench
echo "== mypy (strict, Python 3.9 rules)"
"$venv/bin/mypy"
echo "== pytest"
"$venv/bin/python" -m pytest --durations=8 "$@"
