"""Test-driver domains defined on a running driver (a private libvirtd's test:///default)."""

from __future__ import annotations

from typing import Any

from agentx_virt.demo.node import domain_xml


def define_domain(conn: Any, number: int, start: bool = True) -> Any:
    """Define domain ``number`` on a connection to a running test driver (e.g. a libvirtd's
    ``test:///default``), started unless ``start`` is False; returns the virDomain.

    The run state of a node file does not apply here, so it is left out.
    """
    xml = domain_xml(number).replace(
        " xmlns:test='http://libvirt.org/schemas/domain/test/1.0'", "")
    dom = conn.defineXML(xml[:xml.index("<test:runstate>")] + "</domain>")
    if start:
        dom.create()
    return dom


def define_domains(conn: Any, count: int) -> None:
    """Define and start domains 1..``count`` on a connection to a running test driver."""
    for number in range(1, count + 1):
        define_domain(conn, number)
