"""What a domain's XML says about its devices and its partition tag."""

from __future__ import annotations

import sys
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Optional

# The standard library's parser: it loads no external entities, and its expat
# (2.4 or later) refuses entity expansion bombs.  Keeping lxml out of the daemon
# saves 3.5 MiB of resident memory.
from xml.etree import ElementTree

from agentx_virt.collector.errors import CallFailed
from agentx_virt.model.metadata import NOVA_FIELDS, NOVA_NS_PREFIX, MetadataField
from agentx_virt.model.record import slotted

OVIRTMAP_NS = "http://ovirt.org/ovirtmap/tag/1.0"
LIBOSINFO_NS = "http://libosinfo.org/xmlns/libvirt/domain/1.0"


@slotted
@dataclass(frozen=True)
class Disk:
    target: str
    source: Optional[str]
    bus: Optional[str]
    device: Optional[str] = None       # disk, cdrom, floppy, lun
    kind: Optional[str] = None         # file, block, network, dir, volume
    format: Optional[str] = None       # the driver's type: qcow2, raw, ...
    readonly: bool = False


@slotted
@dataclass(frozen=True)
class Nic:
    """``target`` is the row key: the host-side device name, else (a hostdev or SR-IOV
    NIC, an inactive domain's NIC, a second NIC claiming a name already used) the MAC
    address, else ``nicN`` by position; libvirt takes a name or a MAC for its
    statistics."""

    target: str
    mac: Optional[str]
    source: Optional[str]
    has_device: bool = True        # False: no host-side device, so no statistics
    model: Optional[str] = None    # virtio, e1000, ...


@slotted
@dataclass(frozen=True)
class Layout:
    disks: tuple[Disk, ...] = ()
    nics: tuple[Nic, ...] = ()
    max_vcpus: Optional[int] = None
    tag: Optional[str] = None
    os_id: Optional[str] = None    # libosinfo's id of the guest OS, from the metadata
    metadata: tuple[tuple[str, str], ...] = ()   # (key, value): nova's and configured


def _shared(text: Optional[str]) -> Optional[str]:
    """One string object for text that repeats across domains (``vda``, ``virtio``, a
    network's name): the parser makes a new one for every attribute of every domain."""
    return None if text is None else sys.intern(text)


def _source(element: ElementTree.Element, attributes: tuple[str, ...]) -> Optional[str]:
    source = element.find("source")
    if source is None:
        return None
    for attribute in attributes:
        value = source.get(attribute)
        if value:
            return str(value)
    return None


def _network_source(disk: ElementTree.Element) -> Optional[str]:
    """A network disk's source as ``protocol:name`` (``rbd:pool/image``,
    ``iscsi:iqn.../1``), else ``protocol:host`` (the first host's name or socket)."""
    source = disk.find("source")
    if source is None:
        return None
    protocol = source.get("protocol") or "network"
    name = source.get("name")
    if name:
        return f"{protocol}:{name}"
    host = source.find("host")
    where = None if host is None else host.get("socket") or host.get("name")
    return f"{protocol}:{where}" if where else None


def _nic_key(device: Optional[str], mac: Optional[str], position: int, keys: set[str]) -> str:
    """The NIC's row key: its device name, else its MAC, else ``nicN`` (``nicN~K`` with
    the first K not taken), never one an earlier NIC of the domain has."""
    for key in (device, mac, f"nic{position}"):
        if key and key not in keys:
            return key
    suffix = 1
    while f"nic{position}~{suffix}" in keys:
        suffix += 1
    return f"nic{position}~{suffix}"


def _value(element: Optional[ElementTree.Element], ns: str, steps: Iterable[str],
           attribute: str) -> Optional[str]:
    for step in steps:
        if element is None:
            return None
        element = element.find(f"{{{ns}}}{step}")
    if element is None:
        return None
    text = element.get(attribute) if attribute else element.text
    return text.strip() if text and text.strip() else None


def _metadata(root: ElementTree.Element,
              fields: Iterable[MetadataField]) -> tuple[tuple[str, str], ...]:
    """nova's fields (any version of its namespace), then the configured ones."""
    found: list[tuple[str, str]] = []
    metadata = root.find("metadata")
    if metadata is None:
        return ()
    for child in metadata:
        tag = str(child.tag)
        if tag.startswith("{" + NOVA_NS_PREFIX) and tag.endswith("}instance"):
            ns = tag[1:tag.index("}")]
            for key, path, attribute in NOVA_FIELDS:
                value = _value(child, ns, path.split("/"), attribute)
                if value is not None:
                    found.append((key, value))
            break
    for field in fields:
        element = metadata.find(f"{{{field.namespace}}}*")
        value = _value(element, field.namespace, field.steps, field.attribute)
        if value is not None:
            found.append((field.key, value))
    return tuple(found)


def parse_layout(xml: str, fields: Iterable[MetadataField] = ()) -> Layout:
    """Disks (with a target), NICs (each, keyed as ``Nic`` says), vCPU maximum, ovirtmap
    tag, libosinfo id, and the metadata fields (nova's and ``fields``).

    Raises:
        CallFailed: the XML does not parse (libvirt gave us something odd).
    """
    try:
        root = ElementTree.fromstring(xml)
    except ElementTree.ParseError as exc:
        raise CallFailed(f"domain XML does not parse: {exc}") from None
    disks = []
    for disk in root.iterfind("devices/disk"):
        target = disk.find("target")
        if target is None or not target.get("dev"):
            continue
        driver = disk.find("driver")
        disks.append(Disk(sys.intern(str(target.get("dev"))),
                          _network_source(disk) if disk.get("type") == "network" else
                          _source(disk, ("file", "dev", "name", "volume", "dir")),
                          _shared(target.get("bus")), _shared(disk.get("device", "disk")),
                          _shared(disk.get("type")),
                          None if driver is None else _shared(driver.get("type")),
                          disk.find("readonly") is not None))
    nics: list[Nic] = []
    keys: set[str] = set()
    for position, nic in enumerate(root.iterfind("devices/interface")):
        target = nic.find("target")
        device = None if target is None else target.get("dev") or None
        mac_element = nic.find("mac")
        mac = None if mac_element is None else mac_element.get("address") or None
        key = _nic_key(device, mac, position, keys)
        keys.add(key)
        model = nic.find("model")
        nics.append(Nic(sys.intern(key), mac,
                        _shared(_source(nic, ("bridge", "network", "dev", "path"))),
                        device is not None,
                        None if model is None else _shared(model.get("type"))))
    max_vcpus: Optional[int] = None
    vcpu = root.find("vcpu")
    if vcpu is not None and vcpu.text and vcpu.text.strip().isdigit():
        max_vcpus = int(vcpu.text.strip())
    tag_element = root.find(f"metadata/{{{OVIRTMAP_NS}}}tag")
    tag = _shared(tag_element.text.strip()) if tag_element is not None and tag_element.text \
        else None
    os_element = root.find(f"metadata/{{{LIBOSINFO_NS}}}libosinfo/{{{LIBOSINFO_NS}}}os")
    os_id = None if os_element is None else os_element.get("id") or None
    return Layout(tuple(disks), tuple(nics), max_vcpus, tag, os_id, _metadata(root, fields))
