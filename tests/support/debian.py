"""Build the Debian package from a clean copy of this tree, install it with apt, and purge
it: what a hypervisor host's administrator does, on this machine (as root)."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = "agentx-virt"
# debhelper puts units in /lib/systemd/system up to Debian 12, /usr/lib/systemd/system after.
UNIT_NAME = "agentx-virt.service"
# Debian's tools, not a venv's or pyenv's Python: the package builds and runs with
# /usr/bin/python3.
SYSTEM_ENV = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "HOME": "/root", "LANG": "C.UTF-8",
              "DEBIAN_FRONTEND": "noninteractive"}


class PackagingError(RuntimeError):
    """A packaging tool failed; the message carries its output."""


def run(*command: str, cwd: Path = ROOT, check: bool = True,
        timeout: float = 600) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(command, cwd=cwd, env=SYSTEM_ENV, capture_output=True, text=True,
                            stdin=subprocess.DEVNULL, timeout=timeout)
    if check and result.returncode != 0:
        raise PackagingError(f"{' '.join(command)} exited {result.returncode}:\n"
                             f"{result.stdout[-4000:]}\n{result.stderr[-4000:]}")
    return result


def clean_copy(destination: Path) -> Path:
    """The files git knows (tracked, and untracked but not ignored), symlinks kept."""
    listed = subprocess.run(["git", "ls-files", "-z", "--cached", "--others",
                             "--exclude-standard"], cwd=ROOT, capture_output=True,
                            check=True).stdout.decode().split("\0")
    for name in filter(None, listed):
        source, target = ROOT / name, destination / name
        if not source.is_symlink() and not source.exists():
            continue                     # deleted in the work tree, not yet in git
        target.parent.mkdir(parents=True, exist_ok=True)
        if source.is_symlink():
            os.symlink(os.readlink(source), target)
        else:
            shutil.copy2(source, target)
    return destination


@dataclass(frozen=True)
class Built:
    deb: Path
    changes: Path
    build_log: str


def build(workdir: Path) -> Built:
    """``dpkg-buildpackage -us -uc -b`` in a clean copy; the .deb lands in ``workdir``."""
    source = clean_copy(workdir / "src")
    result = run("dpkg-buildpackage", "-us", "-uc", "-b", cwd=source)
    debs = sorted(workdir.glob(f"{PACKAGE}_*_all.deb"))
    changes = sorted(workdir.glob(f"{PACKAGE}_*.changes"))
    if len(debs) != 1 or len(changes) != 1:
        raise PackagingError(f"expected one .deb and one .changes in {workdir}, found "
                             f"{[p.name for p in workdir.iterdir()]}")
    return Built(debs[0], changes[0], result.stdout + result.stderr)


def installed() -> bool:
    result = run("dpkg-query", "-W", "-f=${Status}", PACKAGE, check=False)
    return result.returncode == 0 and "installed" in result.stdout.split()


def install(deb: Path) -> None:
    run("apt-get", "install", "-y", "-q", "--no-install-recommends", str(deb))


def installed_unit() -> Path:
    """The unit file the installed package holds."""
    for path in run("dpkg", "-L", PACKAGE).stdout.split():
        if path.endswith(f"/systemd/system/{UNIT_NAME}"):
            return Path(path)
    raise PackagingError(f"the installed {PACKAGE} holds no {UNIT_NAME}")


def purge() -> None:
    run("apt-get", "purge", "-y", "-q", PACKAGE)


def file_list(deb: Path) -> list[str]:
    """``dpkg-deb -c``: the package's paths with their modes, owners and link targets."""
    lines = run("dpkg-deb", "-c", str(deb)).stdout.splitlines()
    return [f"{line.split()[0]} {' '.join(line.split()[5:])}" for line in lines]


EXPOSURE = re.compile(r"Overall exposure level for \S+: (\d+(?:\.\d+)?)")


def exposure(unit: Path) -> tuple[float, str]:
    """``systemd-analyze security --offline=true``: the overall score and the full table."""
    result = run("systemd-analyze", "security", "--offline=true", "--no-pager", str(unit),
                 check=False)
    found = EXPOSURE.search(result.stdout)
    if found is None:
        raise PackagingError(f"no exposure level in systemd-analyze's output:\n"
                             f"{result.stdout}\n{result.stderr}")
    return float(found.group(1)), result.stdout


def exec_start(unit: Path) -> list[str]:
    """The unit's ExecStart= command line, split as systemd would (no specifiers used)."""
    for line in unit.read_text().splitlines():
        if line.startswith("ExecStart="):
            return line[len("ExecStart="):].split()
    raise PackagingError(f"{unit} has no ExecStart=")


def as_service_user(user: str) -> list[str]:
    """setpriv with the unit's identity and limits: its user and group with the user's
    groups, no new privileges, no capabilities in any set."""
    return ["setpriv", f"--reuid={user}", f"--regid={user}", "--init-groups",
            "--no-new-privs", "--inh-caps=-all", "--bounding-set=-all", "--"]
