"""``agentx-virt dump``: a sink that prints each Snapshot, without snmpd, as a table, JSON
or the OID lines the SNMP sink would serve."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any, Callable, Optional, TextIO

from agentx_virt.mib.build import build_tables
from agentx_virt.mib.libvirt_ext import LIBVIRT_EXT_MIB
from agentx_virt.mib.model import Mib
from agentx_virt.mib.spec import MibSpec
from agentx_virt.model.libvirt_names import STATE_NAMES, reason_name
from agentx_virt.model.snapshot import Snapshot, uuid_key
from agentx_virt.oid import format_oid
from agentx_virt.snmp.types import VarBind

FORMATS = ("table", "json", "oids")


def render_varbind(varbind: VarBind) -> str:
    """``.OID TYPE value``: strings quoted when printable, else hex."""
    value = varbind.value
    if isinstance(value, bytes):
        text = value.decode("utf-8", "replace")
        shown = (f'"{text}"' if value.isascii() and text.isprintable() else "0x" + value.hex())
    elif isinstance(value, tuple):
        shown = format_oid(value)
    else:
        shown = str(value)
    return f"{format_oid(varbind.name)} {varbind.type.name} {shown}"


def _json_default(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


def _percent(hundredths: Any) -> str:
    return "-" if hundredths is None else f"{hundredths / 100:.1f}%"


# virVcpuState numbers, for the JSON form.
_VCPU_STATES = {0: "offline", 1: "running", 2: "blocked"}


def _named(snapshot: Snapshot, indexes: Mapping[str, int]) -> dict[str, Any]:
    """The snapshot as plain data, each domain with its lvxDomainIndex and each state
    number with its name beside it."""
    data = dataclasses.asdict(snapshot)
    for domain in data["domains"]:
        domain["index"] = indexes.get(uuid_key(domain["uuid"]))
        state, reason = domain["state"], domain["state_reason"]
        domain["state_name"] = None if state is None else STATE_NAMES.get(state, str(state))
        domain["state_reason_name"] = (None if state is None or reason is None
                                       else reason_name(state, reason))
        for vcpu in domain["vcpus"]:
            vcpu["state_name"] = _VCPU_STATES.get(vcpu["state"])
    return data


Views = Sequence[tuple[MibSpec, Mib]]


def render(snapshot: Snapshot, indexes: Mapping[str, int], form: str,
           views: Optional[Views] = None) -> str:
    """``snapshot`` as a table, JSON or OID lines, its domains at ``indexes`` (by UUID);
    the OID lines are those ``views`` serve (default: LIBVIRT-EXT-MIB)."""
    if form == "json":
        return json.dumps(_named(snapshot, indexes), default=_json_default, indent=1)
    if form == "oids":
        built = build_tables(snapshot, indexes,
                             views or [(LIBVIRT_EXT_MIB, LIBVIRT_EXT_MIB.load())])
        lines = [render_varbind(vb) for vb in built.table.varbinds]
        lines += [f"# left out: {r}" for r in built.rejected]
        return "\n".join(lines)
    host = snapshot.host
    lines = [f"libvirt {host.uri}: {'connected' if host.libvirt_connected else 'NOT connected'}"
             f", {host.hypervisor_type or '?'} {host.hypervisor_version or ''},"
             f" {len(snapshot.domains)} domain(s)",
             f"{'index':>5}  {'name':<20} {'state':<22} {'poll':<9} {'reader':>6} "
             f"{'vcpus':>5} {'mem KiB':>10} {'cpu%':>6} {'disks':>5} {'nics':>4}"]
    for d in snapshot.domains:
        state = "-" if d.state is None else STATE_NAMES.get(d.state, str(d.state))
        if d.state is not None and d.state_reason is not None:
            state += f" ({reason_name(d.state, d.state_reason)})"
        lines.append(
            f"{indexes.get(uuid_key(d.uuid), '-'):>5}  {d.name[:20]:<20} {state[:22]:<22} "
            f"{d.poll_status:<9} "
            f"{'-' if d.reader is None else d.reader:>6} {d.vcpus_current or '-':>5} "
            f"{d.memory_current_kib or '-':>10} {_percent(d.cpu_util_vcpus):>6} "
            f"{len(d.disks):>5} {len(d.interfaces):>4}")
    return "\n".join(lines)


class DumpSink:
    """Prints every Snapshot it is given in ``form``, each domain at the index the agent
    serves it at (``indexes``, read from the agent's state, never written)."""

    def __init__(self, out: TextIO, form: str,
                 indexes: Callable[[Snapshot], Mapping[str, int]],
                 views: Optional[Views] = None) -> None:
        if form not in FORMATS:
            raise ValueError(f"unknown dump format {form!r}; known: {', '.join(FORMATS)}")
        self.out = out
        self.form = form
        self._indexes = indexes
        self._views = views

    def publish(self, snapshot: Snapshot) -> None:
        print(render(snapshot, self._indexes(snapshot), self.form, self._views), file=self.out,
              flush=True)
