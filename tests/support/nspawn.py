"""A Debian system booted with systemd as its init in a container, for running the
packaged unit under real systemd: this machine's own init is not systemd.

The root file system comes from debootstrap (minbase with systemd, snmpd, Debian's
libvirt-daemon-system with its polkit and QEMU, and python3-libvirt; no procps), cached
under ``$AGENTX_VIRT_CACHE`` per Debian release and package list, then copied for each
run. ``systemd-nspawn --boot`` starts it with a private
network; commands run inside through ``nsenter`` on the container's init, and the
container is stopped by the pid of its nspawn process.

Booting systemd outside such a root would run its boot services (tmpfiles among them)
on this machine's own files: never do that here.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import signal
import subprocess
import time
from pathlib import Path
from typing import Optional

from tests.support.debian import SYSTEM_ENV, run
from tests.support.guest import cache_root

# dbus and libpam-systemd stand in for virtual packages debootstrap does not resolve.
PACKAGES = ("systemd", "systemd-sysv", "dbus", "libpam-systemd", "snmpd", "snmp",
            "python3-libvirt", "adduser", "libvirt-daemon-system", "qemu-system-x86")
MIRROR = "http://deb.debian.org/debian"


class ContainerError(RuntimeError):
    """The container did not boot; a command that fails raises debian.PackagingError."""


def release() -> str:
    for line in Path("/etc/os-release").read_text().splitlines():
        if line.startswith("VERSION_CODENAME="):
            return line.split("=", 1)[1].strip('"')
    raise ContainerError("/etc/os-release names no VERSION_CODENAME")


def rootfs() -> Path:
    """The cached pristine root file system, made by debootstrap on first use."""
    codename = release()
    key = hashlib.sha256(repr((codename, PACKAGES)).encode()).hexdigest()[:12]
    root = cache_root() / f"rootfs-{codename}-{key}"
    if not (root / ".complete").exists():
        shutil.rmtree(root, ignore_errors=True)
        root.parent.mkdir(parents=True, exist_ok=True)
        run("debootstrap", "--variant=minbase", f"--include={','.join(PACKAGES)}",
            codename, str(root), MIRROR, timeout=1800)
        (root / ".complete").touch()
    return root


class Container:
    """One booted copy of the root file system under ``workdir``."""

    def __init__(self, workdir: Path) -> None:
        self.root = workdir / "root"
        self.log = workdir / "nspawn.log"
        self.process: Optional[subprocess.Popen[bytes]] = None
        self.leader = 0

    def prepare(self, deb: Path) -> None:
        """Copy the pristine root and install ``deb`` into it with dpkg."""
        run("cp", "-a", str(rootfs()), str(self.root))
        shutil.copy2(deb, self.root / "root" / deb.name)
        run("chroot", str(self.root), "dpkg", "-i", f"/root/{deb.name}")

    def path(self, inside: str) -> Path:
        """A path of the container's file system, seen from this machine."""
        return self.root / inside.lstrip("/")

    def boot(self, timeout: float = 90) -> None:
        with open(self.log, "ab") as log:
            self.process = subprocess.Popen(
                ["systemd-nspawn", "-D", str(self.root), "--boot", "--register=no",
                 "--keep-unit", "--private-network", "-q"],
                stdin=subprocess.DEVNULL, stdout=log, stderr=log, env=SYSTEM_ENV,
                start_new_session=True)
        deadline = time.monotonic() + timeout
        while not self.leader:
            if self.process.poll() is not None:
                raise ContainerError(f"systemd-nspawn exited {self.process.returncode}:\n"
                                     f"{self.log.read_text(errors='replace')[-3000:]}")
            if time.monotonic() > deadline:
                raise ContainerError("the container's init did not appear")
            self.leader = self._init_pid()
            time.sleep(0.1)
        state = self.run("systemctl", "is-system-running", "--wait", check=False,
                         timeout=timeout).stdout.strip()
        if state not in ("running", "degraded"):
            raise ContainerError(f"the container's systemd is {state!r}:\n"
                                 f"{self.run('systemctl', '--failed', check=False).stdout}")

    def _init_pid(self) -> int:
        assert self.process is not None
        for task in Path(f"/proc/{self.process.pid}/task").iterdir():
            for child in (task / "children").read_text().split():
                if Path(f"/proc/{child}/comm").read_text().strip() == "systemd":
                    return int(child)
        return 0

    def run(self, *command: str, check: bool = True, timeout: float = 60
            ) -> subprocess.CompletedProcess[str]:
        """``command`` inside the container, as root."""
        return run("nsenter", "-t", str(self.leader), "-a", *command, check=check,
                   timeout=timeout)

    def show(self, unit: str, *properties: str) -> dict[str, str]:
        out = self.run("systemctl", "show", unit, *(f"--property={p}" for p in properties))
        return dict(line.split("=", 1) for line in out.stdout.splitlines() if "=" in line)

    def stop(self, timeout: float = 30) -> None:
        """Power the container off (SIGTERM to nspawn), then SIGKILL if it lingers."""
        if self.process is None or self.process.poll() is not None:
            return
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout)
