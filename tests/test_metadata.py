"""Domain metadata: nova's fields and ``[[metadata]]`` fields from the XML, served in
lvxMetadataTable, and a metadata change picked up without a restart."""

from __future__ import annotations

from pathlib import Path

import libvirt
import pytest

from agentx_virt.app.config import ConfigError, load
from agentx_virt.collector.layout import parse_layout
from agentx_virt.demo.node import domain_uuid, domain_xml
from agentx_virt.demo.snmpd import PrivateSnmpd, snmp_tool
from agentx_virt.mib.model import shipped_mib
from agentx_virt.model.metadata import MetadataField
from agentx_virt.oid import format_oid

from .conftest import private_libvirtd, serving_agent, wait_for

NOVA = """<nova:instance xmlns:nova="http://openstack.org/xmlns/libvirt/nova/{version}">
  <nova:package version="27.1.0"/>
  <nova:name>web-frontend-7</nova:name>
  <nova:creationTime>2026-11-30 09:12:44</nova:creationTime>
  <nova:flavor name="m1.small">
    <nova:memory>2048</nova:memory><nova:disk>20</nova:disk><nova:swap>0</nova:swap>
    <nova:ephemeral>0</nova:ephemeral><nova:vcpus>1</nova:vcpus>
  </nova:flavor>
  <nova:owner>
    <nova:user uuid="8a3b0e1c1f5d4b6e9c2a7d3e4f5a6b7c">alice</nova:user>
    <nova:project uuid="0c1d2e3f4a5b6c7d8e9f0a1b2c3d4e5f">shop</nova:project>
  </nova:owner>
  <nova:root type="image" uuid="5e8b1d42-9c7a-4f3e-b2d1-0a9c8b7e6d5f"/>
</nova:instance>"""
BILLING = "http://example.com/billing/1.0"
FIELDS = (MetadataField("billing.customer", BILLING, ("customer",), "id"),
          MetadataField("billing.plan", BILLING, ("plan",)))
WANTED = {"nova.name": "web-frontend-7", "nova.creationTime": "2026-11-30 09:12:44",
          "nova.flavor": "m1.small", "nova.vcpus": "1", "nova.memoryMiB": "2048",
          "nova.diskGiB": "20", "nova.user": "alice",
          "nova.userId": "8a3b0e1c1f5d4b6e9c2a7d3e4f5a6b7c", "nova.project": "shop",
          "nova.projectId": "0c1d2e3f4a5b6c7d8e9f0a1b2c3d4e5f",
          "nova.image": "5e8b1d42-9c7a-4f3e-b2d1-0a9c8b7e6d5f"}


def with_metadata(number: int, *elements: str) -> str:
    xml = domain_xml(number)
    return xml.replace("<memory>", f"<metadata>{''.join(elements)}</metadata><memory>", 1)


@pytest.mark.parametrize("version", ["1.0", "1.1", "1.2"])
def test_nova_fields_of_any_version_and_configured_fields(version: str) -> None:
    billing = (f'<b:billing xmlns:b="{BILLING}"><b:customer id="C-1042">Acme</b:customer>'
               f"<b:plan> gold </b:plan></b:billing>")
    layout = parse_layout(with_metadata(1, NOVA.format(version=version), billing), FIELDS)
    assert dict(layout.metadata) == {**WANTED, "billing.customer": "C-1042",
                                     "billing.plan": "gold"}
    # Nothing there, an odd namespace, an empty element: no row, never an error.
    assert parse_layout(domain_xml(1), FIELDS).metadata == ()
    odd = '<x:instance xmlns:x="http://openstack.org/xmlns/libvirt/novax/1.1"/>'
    assert parse_layout(with_metadata(1, odd), FIELDS).metadata == ()
    empty = f'<b:billing xmlns:b="{BILLING}"><b:plan/></b:billing>'
    assert parse_layout(with_metadata(1, empty), FIELDS).metadata == ()


@pytest.mark.parametrize("text, message", [
    ("[[metadata]]\nkey = 'a'\n", r":1: \[\[metadata\]\] #1: needs key and namespace"),
    ("[[metadata]]\nkey = 'a'\nnamespace = 'nope'\n", "namespace must be a URI"),
    ("[[metadata]]\nkey = 'nova.name'\nnamespace = 'http://x/'\n", "already used"),
    ("[[metadata]]\nkey = 'a'\nnamespace = 'http://x/'\npath = 'a b'\n",
     "step 'a b' is not an element name"),
    ("[[metadata]]\nkey = 'a'\nnamespace = 'http://x/'\n\n[[metadata]]\nkey = 'a'\n"
     "namespace = 'http://x/'\n", r":5: \[\[metadata\]\] #2: key 'a' is already used"),
    ("[metadata]\nkey = 'a'\n", r":1: metadata must be written as \[\[metadata\]\]"),
])
def test_bad_metadata_fields_name_file_line_and_what(tmp_path: Path, text: str,
                                                     message: str) -> None:
    path = tmp_path / "agentx-virt.toml"
    path.write_text(text)
    with pytest.raises(ConfigError, match=message):
        load(path, environ={})


def test_a_good_metadata_section_loads(tmp_path: Path) -> None:
    path = tmp_path / "agentx-virt.toml"
    path.write_text(f'[[metadata]]\nkey = "billing.customer"\nnamespace = "{BILLING}"\n'
                    f'path = "customer/@id"\n\n[[metadata]]\nkey = "billing.plan"\n'
                    f'namespace = "{BILLING}"\npath = "plan"\n')
    assert load(path, environ={}).metadata == FIELDS


@pytest.mark.peers
def test_metadata_is_served_and_a_change_is_picked_up_without_restart(
        tmp_path_factory: pytest.TempPathFactory, snmpd: PrivateSnmpd, tmp_path: Path) -> None:
    value_oid = format_oid(shipped_mib().object("lvxMetaValue").oid)

    def served() -> dict[str, str]:
        walk = snmp_tool("snmpbulkwalk", snmpd.agent, value_oid, options=["-OQn"]).stdout
        found = {}
        for line in walk.splitlines():
            if not line.startswith(value_oid + "."):
                continue
            instance, _, value = line[len(value_oid) + 1:].partition(" = ")
            parts = [int(p) for p in instance.split(".")]
            key = bytes(parts[2:2 + parts[1]]).decode()    # domain index, length, octets
            found[key] = value.strip().strip('"')
        return found

    with private_libvirtd(tmp_path_factory, "the metadata test") as daemon:
        conn = libvirt.open(daemon.test_uri)
        try:
            conn.defineXML(with_metadata(1, NOVA.format(version="1.1"))).create()
            with serving_agent(daemon.test_uri, snmpd, tmp_path / "state", metadata=FIELDS):
                wait_for(lambda: served() == WANTED, 20)
                dom = conn.lookupByUUIDString(domain_uuid(1))
                # virsh metadata --key b --uri BILLING --set: the element, its namespace
                dom.setMetadata(libvirt.VIR_DOMAIN_METADATA_ELEMENT,
                                '<billing><plan>silver</plan><customer id="C-7"/></billing>',
                                "b", BILLING, 0)
                wait_for(lambda: served() == {**WANTED, "billing.plan": "silver",
                                              "billing.customer": "C-7"}, 40)
        finally:
            conn.close()
