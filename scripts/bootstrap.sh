#!/usr/bin/env bash
# Install what agentx-virt needs to run its demo and tests on Debian, then make .venv.
#   - Debian packages (as root; only those missing are installed)
#   - a virtualenv in .venv (override with AGENTX_VIRT_VENV) holding the package and
#     its test extras at the versions constraints.txt pins; rebuilt when pyproject.toml,
#     constraints.txt or the Python changes
# Sourced by tests/run.sh and scripts/demo.sh; sets $venv.
set -euo pipefail

packages=(
    snmpd snmp snmptrapd smitools                 # AgentX master, CLI, trap receiver, smilint
    python3 python3-venv python3-dev gcc pkg-config libvirt-dev   # libvirt-python's build
    ${AGENTX_VIRT_EXTRA_PACKAGES:-}
)
missing=()
for package in "${packages[@]}"; do
    dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed" \
        || missing+=("$package")
done
if ((${#missing[@]})); then
    if [[ $(id -u) -ne 0 ]]; then
        echo "bootstrap: missing Debian packages: ${missing[*]}" >&2
        echo "  install them as root: apt-get install -y ${missing[*]}" >&2
        exit 1
    fi
    echo "== installing Debian packages: ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

python=${PYTHON:-/usr/bin/python3}
venv=${AGENTX_VIRT_VENV:-.venv}
stamp="$venv/.agentx-virt-installed"
wanted="$(cat pyproject.toml constraints.txt | sha256sum | cut -d' ' -f1) $("$python" -V 2>&1)"
if [[ ! -x "$venv/bin/python" || "$(cat "$stamp" 2>/dev/null)" != "$wanted" ]]; then
    echo "== creating $venv with $("$python" -V 2>&1)"
    rm -rf "$venv"
    "$python" -m venv "$venv"
    log="$venv/pip-install.log"
    # Every Python package comes at the version constraints.txt pins, build backends too.
    pip=(env PIP_CONSTRAINT="$PWD/constraints.txt" "$venv/bin/python" -m pip)
    if ! { "${pip[@]}" install --upgrade pip && "${pip[@]}" install -e '.[test]'; } \
            >"$log" 2>&1; then
        tail -n 40 "$log" >&2
        echo "bootstrap: installing into $venv failed; full log: $log" >&2
        exit 1
    fi
    echo "$wanted" > "$stamp"
fi
