"""A private libvirtd with small QEMU/TCG domains, for the tests and benchmarks.

It runs as root inside ``unshare --mount --net``, with libvirt's directories
bind-mounted from a work directory, so it touches nothing of the host's
libvirt and its tap devices live in their own network namespace.  Domains are
64 MiB, one vCPU, a blank qcow2 disk (they idle in the firmware) and an
``ethernet`` NIC (so interface statistics exist); ``start_panicking_domain`` adds one
whose guest reports a panic at once.  Stopped by pid.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import time
from pathlib import Path
from typing import Optional

import libvirt

from agentx_virt.demo.snmpd import PeerError, log_tail, stop_process

_DIRS = ("etc/libvirt", "run/libvirt", "var/lib/libvirt", "var/cache/libvirt",
         "var/log/libvirt")

_QEMU_CONF = 'user = "root"\ngroup = "root"\nstdio_handler = "file"\nsecurity_driver = "none"\n'
_LIBVIRTD_CONF = ('unix_sock_group = "root"\nunix_sock_rw_perms = "0770"\n'
                  'auth_unix_ro = "none"\nauth_unix_rw = "none"\nlog_outputs = "2:stderr"\n')
_START = """set -e
mount --make-rprivate /
for d in {dirs}; do mkdir -p "/$d"; mount --bind "{root}/$d" "/$d"; done
# Its pid file in its own run directory: the default /run/libvirtd.pid is the host's
# (or another private libvirtd's), and libvirtd refuses to start when it is locked.
exec /usr/sbin/libvirtd -f /etc/libvirt/libvirtd.conf --pid-file /run/libvirt/libvirtd.pid
"""
_ETHERNET_NIC = """<interface type='ethernet'><mac address='{mac}'/>
      <target dev='{tap}' managed='yes'/><model type='virtio'/></interface>"""
_BRIDGED_NIC = """<interface type='bridge'><mac address='{mac}'/><source bridge='{bridge}'/>
      <target dev='{tap}'/><model type='virtio'/></interface>"""
DOMAIN_XML = """<domain type='qemu'>
  <name>{name}</name>
  <memory unit='MiB'>64</memory>
  <vcpu>1</vcpu>
  <os><type arch='x86_64' machine='pc'>hvm</type><boot dev='hd'/></os>
  <devices>
    <emulator>/usr/bin/qemu-system-x86_64</emulator>
    <disk type='file' device='disk'><driver name='qemu' type='qcow2'/>
      <source file='{image}'/><target dev='vda' bus='virtio'/></disk>
    {interface}
  </devices>
</domain>"""


# A guest that crashes at once: its boot sector (x86 real mode) writes 1 ("guest
# panicked") to the ISA pvpanic device at port 0x505, then loops:
#   mov dx, 0x505 / mov al, 1 / out dx, al / jmp $
_PANIC_BOOT_CODE = bytes.fromhex("BA0505B001EEEBFE")
_PANICKING_DOMAIN = """<domain type='qemu'>
  <name>{name}</name>
  <memory unit='MiB'>64</memory>
  <vcpu>1</vcpu>
  <os><type arch='x86_64' machine='pc'>hvm</type><boot dev='hd'/></os>
  <on_crash>preserve</on_crash>
  <devices>
    <emulator>/usr/bin/qemu-system-x86_64</emulator>
    <disk type='file' device='disk'><driver name='qemu' type='raw'/>
      <source file='{image}'/><target dev='vda' bus='virtio'/></disk>
    <panic model='isa'><address type='isa' iobase='0x505'/></panic>
  </devices>
</domain>"""


# The guest of ``guest.py``: a kernel, its initramfs, a data disk, the agent's channel
# and a balloon that reports the guest's memory every 2 s.
_GUEST = """<domain type='qemu'>
  <name>{name}</name>
  <memory unit='MiB'>192</memory>
  <vcpu>1</vcpu>
  <os><type arch='x86_64' machine='pc'>hvm</type><kernel>{kernel}</kernel>
    <initrd>{initrd}</initrd><cmdline>console=ttyS0 quiet</cmdline></os>
  <devices>
    <emulator>/usr/bin/qemu-system-x86_64</emulator>
    <disk type='file' device='disk'><driver name='qemu' type='raw'/>
      <source file='{disk}'/><target dev='vda' bus='virtio'/></disk>
    {interface}
    <channel type='unix'><source mode='bind'/>
      <target type='virtio' name='org.qemu.guest_agent.0'/></channel>
    <serial type='file'><source path='{console}'/><target port='0'/></serial>
    <memballoon model='virtio'><stats period='2'/></memballoon>
  </devices>
</domain>"""


def available() -> Optional[str]:
    """None when a private libvirtd can run here, else why not."""
    if os.geteuid() != 0:
        return "needs root (unshare and libvirtd's QEMU driver)"
    for program in ("/usr/sbin/libvirtd", "/usr/bin/qemu-system-x86_64", "/usr/bin/qemu-img"):
        if not Path(program).exists():
            return f"{program} is missing (Debian: libvirt-daemon libvirt-daemon-driver-qemu " \
                   "qemu-system-x86 qemu-utils)"
    if shutil.which("unshare") is None:
        return "unshare is missing (util-linux)"
    return None


class PrivateLibvirtd:
    def __init__(self, workdir: Path) -> None:
        self.root = Path(workdir)
        self.process: Optional[subprocess.Popen[bytes]] = None
        self.log_path = self.root / "libvirtd.log"
        self.domains: list[str] = []

    @property
    def uri(self) -> str:
        """The QEMU driver of this libvirtd."""
        return f"qemu+unix:///system?socket={self.root}/run/libvirt/libvirt-sock"

    @property
    def test_uri(self) -> str:
        """libvirt's test driver served by this libvirtd: shared by all its clients, and
        forgotten when the last one disconnects."""
        return f"test+unix:///default?socket={self.root}/run/libvirt/libvirt-sock"

    def start(self, timeout: float = 60.0) -> PrivateLibvirtd:
        problem = available()
        if problem:
            raise PeerError(f"cannot run a private libvirtd: {problem}")
        for directory in _DIRS:
            (self.root / directory).mkdir(parents=True, exist_ok=True)
        (self.root / "images").mkdir(exist_ok=True)
        (self.root / "etc/libvirt/qemu.conf").write_text(_QEMU_CONF)
        (self.root / "etc/libvirt/libvirtd.conf").write_text(_LIBVIRTD_CONF)
        script = self.root / "start.sh"
        script.write_text(_START.format(dirs=" ".join(_DIRS), root=self.root))
        with open(self.log_path, "ab") as log_file:
            self.process = subprocess.Popen(
                ["unshare", "--mount", "--net", "--", "bash", str(script)],
                stdin=subprocess.DEVNULL, stdout=log_file, stderr=log_file,
                start_new_session=True)
        deadline = time.monotonic() + timeout
        socket_path = self.root / "run/libvirt/libvirt-sock"
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise PeerError(f"libvirtd exited with {self.process.returncode}: "
                                f"{self.log_tail()}")
            if socket_path.exists():
                try:
                    libvirt.open(self.uri).close()   # the first connection probes QEMU (~4 s)
                    return self
                except libvirt.libvirtError:
                    pass
            time.sleep(0.1)
        self.stop()
        raise PeerError(f"libvirtd did not answer within {timeout:g} s: {self.log_tail()}")

    def start_domain(self, name: str, number: int, bridge: Optional[str] = None) -> None:
        """Define and start a small QEMU/TCG domain (MAC 52:54:00:aa:00:NN, tap tapNN);
        with ``bridge``, its NIC is attached to that bridge (it must exist in the
        libvirtd's net namespace)."""
        image = self.root / "images" / f"{name}.qcow2"
        subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", str(image), "64M"],
                       check=True, stdin=subprocess.DEVNULL)
        conn = libvirt.open(self.uri)
        try:
            mac, tap = f"52:54:00:aa:00:{number:02x}", f"tap{number}"
            interface = (_BRIDGED_NIC.format(mac=mac, tap=tap, bridge=bridge) if bridge
                         else _ETHERNET_NIC.format(mac=mac, tap=tap))
            dom = conn.defineXML(DOMAIN_XML.format(name=name, image=image, interface=interface))
            self.domains.append(name)
            dom.create()
        finally:
            conn.close()

    def start_panicking_domain(self, name: str) -> None:
        """Define and start a QEMU/TCG domain whose guest panics as soon as it boots (in
        under a second here); with ``on_crash`` preserve, libvirt then reports it
        crashed (reason panicked) and keeps it in that state."""
        image = self.root / "images" / f"{name}.img"
        image.parent.mkdir(parents=True, exist_ok=True)
        sector = _PANIC_BOOT_CODE + bytes(510 - len(_PANIC_BOOT_CODE)) + b"\x55\xaa"
        image.write_bytes(sector + bytes(1024 * 1024 - len(sector)))
        conn = libvirt.open(self.uri)
        try:
            dom = conn.defineXML(_PANICKING_DOMAIN.format(name=name, image=image))
            self.domains.append(name)
            dom.create()
        finally:
            conn.close()

    def start_guest(self, name: str, number: int, kernel: Path, initrd: Path,
                    disk: Path) -> Path:
        """Define and start the real Linux guest (``guest.py``) with ``disk`` as its vda;
        returns the path of its serial console log."""
        console = self.root / f"{name}-console.log"
        conn = libvirt.open(self.uri)
        try:
            interface = _ETHERNET_NIC.format(mac=f"52:54:00:aa:00:{number:02x}",
                                             tap=f"tap{number}")
            dom = conn.defineXML(_GUEST.format(name=name, kernel=kernel, initrd=initrd,
                                               disk=disk, interface=interface,
                                               console=console))
            self.domains.append(name)
            dom.create()
        finally:
            conn.close()
        return console

    def qemu_pid(self, name: str) -> int:
        return int((self.root / "run/libvirt/qemu" / f"{name}.pid").read_text().strip())

    def log_tail(self, lines: int = 20) -> str:
        return log_tail(self.log_path, lines)

    def stop_daemon(self) -> None:
        """Stop libvirtd only; its QEMU domains keep running (start() reattaches them)."""
        stop_process(self.process, timeout=10)
        self.process = None

    def stop(self) -> None:
        for name in self.domains:
            try:
                pid = self.qemu_pid(name)
                os.kill(pid, signal.SIGCONT)       # a test may have left it stopped
                os.kill(pid, signal.SIGKILL)
            except (OSError, ValueError):
                pass
        self.stop_daemon()

    def __enter__(self) -> PrivateLibvirtd:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
