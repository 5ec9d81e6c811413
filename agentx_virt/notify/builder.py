"""Notification contents → a ``Trap``: varbinds named, typed and converted from the MIB.

Pure: the notifier decides what to send and when; this only builds it.  Every
domain object's instance is the domain's lvxDomainIndex (the job objects add the
slot); host-level notifications carry scalars (instance 0).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Optional

from agentx_virt.agentx.traps import Trap
from agentx_virt.mib.convert import Converter, converter
from agentx_virt.mib.model import Mib
from agentx_virt.oid import OID
from agentx_virt.snmp.table import served
from agentx_virt.snmp.types import VarBind


class TrapBuilder:
    def __init__(self, mib: Mib) -> None:
        self.mib = mib
        self._converters: dict[str, Converter] = {}

    def domain_trap(self, notification: str, index: int, values: dict[str, object],
                    slots: Optional[dict[str, str]] = None, extra: Sequence[str] = ()) -> Trap:
        """``notification`` about the domain in row ``index``; ``slots`` names the job
        slot of job objects; ``extra`` objects (of the row) follow the notification's
        own, as RFC 3416 lets an agent append.

        Raises:
            Reject: a value the object's syntax does not allow.
            KeyError: ``values`` lacks one of the notification's objects.
        """
        spec = self.mib.notification(notification)
        varbinds = []
        for name in (*spec.objects, *extra):
            instance: OID = (index,)
            if slots and name in slots:
                slot_syntax = self.mib.object("lvxJobSlot").syntax
                assert slot_syntax is not None
                instance = (index, slot_syntax.enum[slots[name]])
            varbinds.append(self._varbind(name, instance, values[name]))
        return Trap(spec.oid, tuple(varbinds))

    def row_trap(self, notification: str, instance: OID, values: dict[str, object]) -> Trap:
        """``notification`` whose objects all name the same row ``instance``."""
        spec = self.mib.notification(notification)
        return Trap(spec.oid, tuple(self._varbind(name, instance, values[name])
                                    for name in spec.objects))

    def trap(self, notification: str, values: dict[str, tuple[OID, object]]) -> Trap:
        """``notification`` with each object's (instance, value) given."""
        spec = self.mib.notification(notification)
        return Trap(spec.oid, tuple(self._varbind(name, *values[name])
                                    for name in spec.objects))

    def host_trap(self, notification: str, values: dict[str, object]) -> Trap:
        """``notification`` whose objects are scalars (instance 0); raises as above."""
        spec = self.mib.notification(notification)
        return Trap(spec.oid, tuple(self._varbind(name, (0,), values[name])
                                    for name in spec.objects))

    def _varbind(self, name: str, instance: OID, value: object) -> VarBind:
        obj = self.mib.object(name)
        assert obj.syntax is not None
        convert = self._converters.get(name)
        if convert is None:
            convert = self._converters[name] = converter(obj)
        return VarBind(obj.oid + instance, obj.syntax.base, served(convert(value)))
