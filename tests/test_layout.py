"""Domain XML → devices and partition tag, including XML that is odd or hostile."""

from __future__ import annotations

import pytest

from agentx_virt.collector.errors import CallFailed
from agentx_virt.collector.layout import LIBOSINFO_NS, Disk, Nic, parse_layout
from agentx_virt.demo.node import domain_xml


def test_devices_vcpus_and_tag_from_a_generated_domain() -> None:
    layout = parse_layout(domain_xml(3, tags=2))     # 3 % 3 == 0: tagged virt-0
    assert layout.disks == (
        Disk("vda", "/var/lib/images/vm0003.qcow2", "virtio", "disk", "file"),
        Disk("sdb", "/var/lib/images/vm0003-data.raw", "sata", "disk", "file"))
    assert layout.nics == (Nic("tap3n0", "52:54:00:00:03:00", "br0"),
                           Nic("tap3n1", "52:54:00:00:03:01", "br1"))
    assert (layout.max_vcpus, layout.tag) == (4, "virt-0")


def test_device_facts_and_the_guest_os_from_the_xml() -> None:
    layout = parse_layout(f"""<domain><metadata>
      <libosinfo:libosinfo xmlns:libosinfo="{LIBOSINFO_NS}">
        <libosinfo:os id="http://debian.org/debian/12"/></libosinfo:libosinfo></metadata>
      <devices>
        <disk type='block' device='disk'><driver name='qemu' type='raw'/>
          <source dev='/dev/vg/a'/><target dev='vda' bus='virtio'/></disk>
        <disk type='file' device='cdrom'><driver name='qemu' type='raw'/>
          <source file='/iso/d.iso'/><target dev='sda' bus='sata'/><readonly/></disk>
        <interface type='bridge'><source bridge='br0'/><target dev='vnet4'/>
          <model type='virtio'/></interface>
      </devices></domain>""")
    assert layout.os_id == "http://debian.org/debian/12"
    assert layout.disks == (Disk("vda", "/dev/vg/a", "virtio", "disk", "block", "raw"),
                            Disk("sda", "/iso/d.iso", "sata", "cdrom", "file", "raw", True))
    assert layout.nics[0].model == "virtio"


def test_a_disk_without_a_target_and_a_missing_tag_are_left_out() -> None:
    layout = parse_layout("<domain><vcpu>x</vcpu><devices><disk><source file='/a'/></disk>"
                          "</devices></domain>")
    assert (layout.disks, layout.nics, layout.max_vcpus, layout.tag) == ((), (), None, None)


def test_every_nic_gets_a_row_key_even_without_a_target_or_with_a_repeated_one() -> None:
    layout = parse_layout(
        "<domain><devices>"
        "<interface type='bridge'><mac address='52:54:00:00:00:01'/><source bridge='br0'/>"
        "<target dev='tap0'/></interface>"
        "<interface type='hostdev'><mac address='52:54:00:00:00:02'/></interface>"
        "<interface type='bridge'><mac address='52:54:00:00:00:03'/>"
        "<target dev='tap0'/></interface>"                      # the same target again
        "<interface type='user'/>"                                # neither target nor MAC
        "<interface type='user'><target dev=''/></interface>"
        "</devices></domain>")
    assert layout.nics == (Nic("tap0", "52:54:00:00:00:01", "br0"),
                           Nic("52:54:00:00:00:02", "52:54:00:00:00:02", None, False),
                           Nic("52:54:00:00:00:03", "52:54:00:00:00:03", None),
                           Nic("nic3", None, None, False),
                           Nic("nic4", None, None, False))


BOMB = ("<!DOCTYPE d [<!ENTITY a 'aaaaaaaaaa'>"
        + "".join(f"<!ENTITY {chr(98 + i)} '{('&' + chr(97 + i) + ';') * 10}'>"
                  for i in range(8))
        + "]><domain><name>&i;</name></domain>")


@pytest.mark.parametrize("xml, why", [
    ("<domain><devices>", "does not parse"),
    ("", "does not parse"),
    (BOMB, "amplification"),
    ("<!DOCTYPE d [<!ENTITY x SYSTEM 'file:///etc/passwd'>]><domain><name>&x;</name>"
     "</domain>", "undefined entity"),
])
def test_xml_that_does_not_parse_is_a_call_failure_that_says_why(xml: str, why: str) -> None:
    with pytest.raises(CallFailed, match=why):
        parse_layout(xml)


def test_text_that_repeats_across_domains_is_one_object() -> None:
    first, second = parse_layout(domain_xml(1, tags=2)), parse_layout(domain_xml(4, tags=2))
    assert first.disks[0].target is second.disks[0].target          # "vda"
    assert first.disks[0].bus is second.disks[0].bus                # "virtio"
    assert first.nics[0].source is second.nics[0].source            # "br0"
    assert first.tag is second.tag                                  # "virt-1"


def test_nic_keys_stay_unique_whatever_names_the_devices_already_took() -> None:
    nics = parse_layout(
        "<domain><devices>"
        "<interface type='bridge'><target dev='nic2'/></interface>"
        "<interface type='bridge'><target dev='nic2~1'/></interface>"
        "<interface type='user'/>"                       # position 2: nic2 is taken
        "</devices></domain>").nics
    assert [n.target for n in nics] == ["nic2", "nic2~1", "nic2~2"]
