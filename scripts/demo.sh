#!/usr/bin/env bash
# The demo: install what is needed (scripts/bootstrap.sh), then run the agent against
# libvirt's test driver behind a private snmpd, walk the domain table, and stop.
# Extra arguments go to `agentx-virt demo`, e.g. `bash scripts/demo.sh --domains 50`.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/bootstrap.sh
exec "$venv/bin/agentx-virt" --log-level WARNING demo "$@"
