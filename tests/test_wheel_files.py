"""pip users get the files a system install needs from the wheel itself: the unit, the
configuration, the snmpd drop-in, the MIB and the man page, under PREFIX/share; and the
package's version is the same everywhere it is written."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

from agentx_virt import __version__

ROOT = Path(__file__).resolve().parents[1]
SHIPPED = {
    "share/agentx-virt/agentx-virt.service": "packaging/agentx-virt.service",
    "share/agentx-virt/agentx-virt.toml": "packaging/agentx-virt.toml",
    "share/agentx-virt/snmpd.conf.d/agentx-virt.conf": "packaging/snmpd.conf.d/agentx-virt.conf",
    "share/snmp/mibs/LIBVIRT-EXT-MIB.txt": "mibs/LIBVIRT-EXT-MIB.txt",
    "share/man/man8/agentx-virt.8": "packaging/agentx-virt.8",
}


def pip(*args: str) -> None:
    # Built as pip builds it for a user (an isolated build environment), with the pinned
    # setuptools, as scripts/bootstrap.sh installs.
    env = {**os.environ, "PIP_CONSTRAINT": str(ROOT / "constraints.txt")}
    result = subprocess.run([sys.executable, "-m", "pip", "--disable-pip-version-check",
                             "-q", *args], capture_output=True, text=True, env=env,
                            stdin=subprocess.DEVNULL)
    assert result.returncode == 0, result.stdout + result.stderr


def test_a_pip_install_puts_the_system_files_under_its_prefix(tmp_path: Path) -> None:
    pip("wheel", "--no-deps", "-w", str(tmp_path / "dist"), str(ROOT))
    wheel, = (tmp_path / "dist").glob("agentx_virt-*.whl")
    prefix = tmp_path / "prefix"
    own = Path(sys.executable).parent / "agentx-virt"
    had_own = own.exists()
    # --ignore-installed: without it pip would first uninstall the running venv's copy.
    pip("install", "--no-deps", "--no-compile", "--ignore-installed", "--prefix", str(prefix),
        str(wheel))
    assert own.exists() == had_own               # the running environment is untouched
    for installed, source in SHIPPED.items():
        assert (prefix / installed).read_bytes() == (ROOT / source).read_bytes(), installed
    assert (prefix / "bin" / "agentx-virt").is_file()
    licenses = list(prefix.glob("lib/python3*/site-packages/agentx_virt-*.dist-info/"
                                "licenses/LICENSE"))
    assert len(licenses) == 1 and "Apache License" in licenses[0].read_text()


def test_the_package_changelog_and_the_man_page_carry_the_version() -> None:
    first = (ROOT / "debian" / "changelog").read_text().splitlines()[0]
    assert re.match(rf"agentx-virt \({re.escape(__version__)}\) ", first), first
    header = (ROOT / "packaging" / "agentx-virt.8").read_text().splitlines()[0]
    assert f'"agentx-virt {__version__}"' in header, header
