#!/usr/bin/env bash
# Install what the test suite needs (scripts/bootstrap.sh), then run all of it:
# ruff, mypy (strict, Python 3.9 rules) and pytest.
# Extra arguments go to pytest, e.g. `bash tests/run.sh -k codec`.
set -euo pipefail
cd "$(dirname "$0")/.."
# The QEMU/TCG tests run a private libvirtd (no KVM needed); one test runs the packaged
# snmptt example behind snmptrapd; tests/test_debian_package.py builds the Debian package
# (dpkg-buildpackage, lintian), installs it with apt and checks its unit (systemd-analyze);
# tests/test_systemd_unit.py boots a Debian container (debootstrap, systemd-nspawn) to run
# the unit under real systemd.
export AGENTX_VIRT_EXTRA_PACKAGES="libvirt-daemon libvirt-daemon-driver-qemu qemu-system-x86 qemu-utils snmptt libvirt-clients dpkg-dev debhelper dh-python pybuild-plugin-pyproject python3-all python3-setuptools lintian systemd systemd-container debootstrap"
source scripts/bootstrap.sh
# libvirt's QEMU driver wants this user to exist even when qemu.conf says root.
if [[ $(id -u) -eq 0 ]] && ! id libvirt-qemu >/dev/null 2>&1; then
    groupadd -r libvirt-qemu
    useradd -r -g libvirt-qemu -d /var/lib/libvirt -s /usr/sbin/nologin libvirt-qemu
fi

echo "== ruff"
"$venv/bin/ruff" check agentx_virt tests bench
echo "== mypy (strict, Python 3.9 rules)"
"$venv/bin/mypy"
echo "== pytest"
"$venv/bin/python" -m pytest --durations=8 "$@"
