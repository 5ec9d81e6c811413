"""A tiny real Linux guest running the QEMU guest agent, built from Debian packages alone.

Debian's cloud kernel boots an initramfs made here: busybox-static, the virtio modules,
qemu-ga with the libraries it links (taken from this host, which has them for QEMU)
and an ``/init`` that mounts a virtio data disk, brings up a static address on eth0
and keeps qemu-ga running on its virtio-serial port.  The packages are fetched with
``apt-get download`` and unpacked with ``dpkg-deb -x``: nothing is installed on the
host.  The kernel and initramfs are cached under ``$AGENTX_VIRT_CACHE`` (default
``~/.cache/agentx-virt``) by package versions and this file's build recipe, so a
machine pays for the build once (about 30 MB fetched, a few seconds).

Inside the guest, ``touch /run/ga-paused`` stops the agent's restart loop (a test kills
qemu-ga through ``guest-exec`` after that); removing the file lets it start again.
"""

from __future__ import annotations

import gzip
import hashlib
import os
import re
import shutil
import stat
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

KERNEL_META = "linux-image-cloud-amd64"
PACKAGES = ("busybox-static", "qemu-guest-agent")
MODULES = ("virtio_ring", "virtio", "virtio_pci_legacy_dev", "virtio_pci_modern_dev",
           "virtio_pci", "failover", "net_failover", "virtio_net", "virtio_blk",
           "virtio_console", "virtio_balloon")
HOSTNAME = "axv-guest"
ADDRESS = "192.0.2.10/24"           # TEST-NET-1: never routed
INIT = f"""#!/bin/busybox sh
/bin/busybox --install -s /bin
export PATH=/bin:/usr/sbin:/usr/bin
mount -t proc proc /proc
mount -t sysfs sys /sys
mount -t devtmpfs dev /dev
mkdir -p /run /tmp /var/run /dev/virtio-ports /mnt/data
for module in {' '.join(MODULES)}; do insmod /lib/modules/$module.ko; done
hostname {HOSTNAME}
ip link set lo up
for _ in 1 2 3 4 5 6 7 8 9 10; do [ -e /sys/class/net/eth0 ] && break; sleep 0.5; done
ip link set eth0 up
ip addr add {ADDRESS} dev eth0
for _ in 1 2 3 4 5 6 7 8 9 10; do [ -e /dev/vda ] && break; sleep 0.5; done
mount -t ext4 /dev/vda /mnt/data
for _ in 1 2 3 4 5 6 7 8 9 10; do
    ls /sys/class/virtio-ports/*/name >/dev/null 2>&1 && break; sleep 0.5
done
for port in /sys/class/virtio-ports/*; do
    ln -sf /dev/${{port##*/}} /dev/virtio-ports/$(cat $port/name)
done
touch /run/utmp
echo "guest ready" > /dev/ttyS0
while true; do
    [ -e /run/ga-paused ] || qemu-ga -m virtio-serial -p /dev/virtio-ports/org.qemu.guest_agent.0
    sleep 1
done
"""


@dataclass(frozen=True)
class GuestFiles:
    kernel: Path
    initrd: Path


def cache_root() -> Path:
    configured = os.environ.get("AGENTX_VIRT_CACHE")
    return Path(configured) if configured else Path.home() / ".cache" / "agentx-virt"


def _run(*command: str, cwd: Path | None = None) -> str:
    done = subprocess.run(command, cwd=cwd, capture_output=True, text=True,
                          stdin=subprocess.DEVNULL)
    if done.returncode:
        raise RuntimeError(f"{' '.join(command)} failed ({done.returncode}): "
                           f"{done.stderr.strip()[-500:]}")
    return done.stdout


def _kernel_package() -> str:
    depends = _run("apt-cache", "depends", KERNEL_META)
    found = re.search(r"Depends: (linux-image-\S+)", depends)
    if not found:
        raise RuntimeError(f"apt-cache depends {KERNEL_META} names no kernel: {depends!r}")
    return found.group(1)


def _versions(names: list[str]) -> list[str]:
    policy = _run("apt-cache", "policy", *names)
    return re.findall(r"Candidate: (\S+)", policy)


def guest_files() -> GuestFiles:
    """The kernel and initramfs, built once per package versions and recipe."""
    names = [_kernel_package(), *PACKAGES]
    recipe = Path(__file__).read_bytes()
    key = hashlib.sha256(repr((names, _versions(names))).encode() + recipe).hexdigest()[:16]
    home = cache_root() / f"guest-{key}"
    files = GuestFiles(home / "vmlinuz", home / "initrd.gz")
    if files.kernel.exists() and files.initrd.exists():
        return files
    home.parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="guest-build-", dir=home.parent))
    try:
        _build(names, work)
        shutil.rmtree(home, ignore_errors=True)
        os.replace(work / "out", home)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return files


def _build(names: list[str], work: Path) -> None:
    debs, root, out = work / "debs", work / "root", work / "out"
    for directory in (debs, root, out):
        directory.mkdir()
    try:
        _run("apt-get", "download", *names, cwd=debs)
    except RuntimeError:                      # no package lists yet on a fresh machine
        _run("apt-get", "update", "-qq")
        _run("apt-get", "download", *names, cwd=debs)
    for deb in sorted(debs.glob("*.deb")):
        _run("dpkg-deb", "-x", str(deb), str(root))
    (kernel,) = root.glob("boot/vmlinuz-*")
    shutil.copyfile(kernel, out / "vmlinuz")
    entries = _entries(root)
    with gzip.open(out / "initrd.gz", "wb", compresslevel=6) as archive:
        archive.write(_cpio(entries))


_Entry = tuple[str, int, bytes]    # path in the archive, mode, content (a link's target)


def _entries(root: Path) -> list[_Entry]:
    entries: list[_Entry] = [(d, stat.S_IFDIR | 0o755, b"") for d in (
        "bin", "dev", "etc", "lib", "lib/modules", "lib64", "mnt", "proc", "run", "sys",
        "tmp", "usr", "usr/bin", "usr/sbin", "var")]
    entries.append(("init", stat.S_IFREG | 0o755, INIT.encode()))
    entries.append(("bin/busybox", stat.S_IFREG | 0o755, (root / "bin/busybox").read_bytes()))
    for module in MODULES:
        (path,) = root.glob(f"lib/modules/*/kernel/**/{module}.ko")
        entries.append((f"lib/modules/{module}.ko", stat.S_IFREG | 0o644, path.read_bytes()))
    agent = root / "usr/sbin/qemu-ga"
    entries.append(("usr/sbin/qemu-ga", stat.S_IFREG | 0o755, agent.read_bytes()))
    libraries: set[str] = set()
    for line in _run("ldd", str(agent)).splitlines():
        found = re.search(r"(/\S+)\s+\(0x", line)
        if found:
            libraries.add(found.group(1))
    directories = {"lib", "lib64"}
    for library in sorted(libraries):
        inside = library.lstrip("/")
        for parent in reversed(Path(inside).parents[:-1]):
            if str(parent) not in directories:
                directories.add(str(parent))
                entries.append((str(parent), stat.S_IFDIR | 0o755, b""))
        entries.append((inside, stat.S_IFREG | 0o755, Path(library).read_bytes()))
    os_release = Path("/etc/os-release").read_bytes()
    entries += [("etc/os-release", stat.S_IFREG | 0o644, os_release),
                ("etc/hostname", stat.S_IFREG | 0o644, f"{HOSTNAME}\n".encode()),
                ("etc/passwd", stat.S_IFREG | 0o644, b"root:x:0:0:root:/:/bin/sh\n"),
                ("etc/group", stat.S_IFREG | 0o644, b"root:x:0:\n")]
    return entries


def _cpio(entries: list[_Entry]) -> bytes:
    """The entries as a cpio "newc" archive (what the kernel unpacks as initramfs)."""
    parts: list[bytes] = []

    def pad(data: bytes) -> bytes:
        return data + b"\0" * (-len(data) % 4)

    for number, (name, mode, data) in enumerate([*entries, ("TRAILER!!!", 0, b"")], 1):
        encoded = name.encode() + b"\0"
        fields = (number, mode, 0, 0, 2 if stat.S_ISDIR(mode) else 1, 0, len(data), 0, 0,
                  0, 0, len(encoded), 0)
        header = b"070701" + b"".join(b"%08X" % value for value in fields)
        parts.append(pad(header + encoded))
        parts.append(pad(data))
    return b"".join(parts)


def data_disk(path: Path, files: dict[str, bytes], size_mib: int = 32) -> Path:
    """A raw ext4 image holding ``files`` (mounted at /mnt/data in the guest)."""
    content = path.with_suffix(".d")
    content.mkdir(parents=True, exist_ok=True)
    for name, data in files.items():
        (content / name).write_bytes(data)
    with open(path, "wb") as image:
        image.truncate(size_mib * 1024 * 1024)
    _run("mkfs.ext4", "-q", "-F", "-L", "axvdata", "-d", str(content), str(path))
    return path
