"""Node XML for libvirt's test driver: many domains in several states, with disks, NICs
and partition tags, for the demo (the tests and benchmarks use it too)."""

from __future__ import annotations

import uuid
from html import escape

# (libvirt state number, how many of each 10 domains are in it)
_STATES = ((1, 6), (3, 2), (5, 2))


def domain_uuid(number: int) -> str:
    """A stable UUID for domain ``number`` (so tests can predict it)."""
    return str(uuid.UUID(int=(0x6A7E << 112) | number, version=4))


def domain_state(number: int) -> int:
    slot = number % 10
    for state, count in _STATES:
        if slot < count:
            return state
        slot -= count
    return 1


def domain_xml(number: int, tags: int = 0) -> str:
    """One ``<domain type='test'>``: 2 disks and 1 or 2 NICs; tag ``virt-K`` on some when
    ``tags`` > 0 (K = number % (tags + 1); K == tags means untagged)."""
    name = f"vm{number:04d}"
    tag_number = number % (tags + 1) if tags else tags
    metadata = ""
    if tags and tag_number < tags:
        metadata = ("<metadata><ovirtmap:tag xmlns:ovirtmap='http://ovirt.org/ovirtmap/tag/1.0'>"
                    f"virt-{tag_number}</ovirtmap:tag></metadata>")
    nics = "".join(
        f"<interface type='bridge'><mac address='52:54:00:{number >> 8 & 255:02x}:"
        f"{number & 255:02x}:{n:02x}'/><source bridge='br{n}'/>"
        f"<target dev='tap{number}n{n}'/></interface>"
        for n in range(1 + number % 2))
    return (
        "<domain type='test' xmlns:test='http://libvirt.org/schemas/domain/test/1.0'>"
        f"<name>{escape(name)}</name><uuid>{domain_uuid(number)}</uuid>{metadata}"
        f"<memory>{(1 + number % 4) * 524288}</memory>"
        f"<currentMemory>{(1 + number % 4) * 262144}</currentMemory>"
        f"<vcpu>{1 + number % 4}</vcpu><os><type>hvm</type></os><devices>"
        f"<disk type='file' device='disk'><source file='/var/lib/images/{name}.qcow2'/>"
        "<target dev='vda' bus='virtio'/></disk>"
        f"<disk type='file' device='disk'><source file='/var/lib/images/{name}-data.raw'/>"
        "<target dev='sdb' bus='sata'/></disk>"
        f"{nics}</devices><test:runstate>{domain_state(number)}</test:runstate></domain>")


def node_xml(count: int, tags: int = 0) -> str:
    """A test-driver node with ``count`` domains numbered 1..count."""
    return "<node>" + "".join(domain_xml(n, tags) for n in range(1, count + 1)) + "</node>\n"
