"""The compiled MIB as Python objects: OIDs, access, syntax and indexes by object name.

Everything numeric about the MIB (OIDs, enumerations, ranges, sizes) comes from
the shipped pysmi JSON, never from Python source.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

from agentx_virt.mib.compile import COMPILED_DIR, MODULE, TC_MODULES
from agentx_virt.oid import OID, parse_oid
from agentx_virt.snmp.types import ValueType

_BASE_TYPES = {
    "INTEGER": ValueType.INTEGER,
    "Integer32": ValueType.INTEGER,
    "OCTET STRING": ValueType.OCTET_STRING,
    "OBJECT IDENTIFIER": ValueType.OBJECT_IDENTIFIER,
    "IpAddress": ValueType.IP_ADDRESS,
    "Counter32": ValueType.COUNTER32,
    "Gauge32": ValueType.GAUGE32,
    "Unsigned32": ValueType.GAUGE32,
    "TimeTicks": ValueType.TIME_TICKS,
    "Opaque": ValueType.OPAQUE,
    "Counter64": ValueType.COUNTER64,
}
READABLE = ("read-only", "read-write", "read-create")


class MibError(KeyError):
    """The code asked the MIB for an object it does not define (a code/MIB mismatch)."""

    def __str__(self) -> str:
        return str(self.args[0])


@dataclass(frozen=True)
class Syntax:
    """An object's syntax reduced to what serving needs.

    ``base`` is the SNMP type on the wire, ``tc`` the textual convention named
    by the object (None for a plain type), ``enum`` the named numbers,
    ``ranges`` the allowed values and ``sizes`` the allowed octet-string lengths.
    """

    base: ValueType
    tc: Optional[str] = None
    enum: Mapping[str, int] = field(default_factory=dict)
    ranges: tuple[tuple[int, int], ...] = ()
    sizes: tuple[tuple[int, int], ...] = ()


@dataclass(frozen=True)
class MibObject:
    """One OBJECT-TYPE (or a node) of the module."""

    name: str
    oid: OID
    nodetype: str                  # scalar, column, row, table, or "" for other nodes
    access: str                    # read-only, not-accessible, accessible-for-notify…
    syntax: Optional[Syntax]
    indices: tuple[tuple[str, bool], ...] = ()   # rows: (index object, implied)
    units: Optional[str] = None

    @property
    def readable(self) -> bool:
        return self.access in READABLE


@dataclass(frozen=True)
class Notification:
    name: str
    oid: OID
    objects: tuple[str, ...]


def _constraints(spec: Mapping[str, Any]) -> dict[str, Any]:
    found: dict[str, Any] = {}
    constraints = spec.get("constraints") or {}
    if "enumeration" in constraints:
        found["enum"] = dict(constraints["enumeration"])
    if "range" in constraints:
        found["ranges"] = tuple((r["min"], r["max"]) for r in constraints["range"])
    if "size" in constraints:
        found["sizes"] = tuple((s["min"], s["max"]) for s in constraints["size"])
    return found


class Mib:
    """One SMI module and the textual conventions it uses, loaded from pysmi JSON.

    ``module`` names the module among ``modules``; ``root`` its MODULE-IDENTITY, whose
    OID is the subtree an agent registers for it.
    """

    def __init__(self, modules: Mapping[str, Mapping[str, Any]], module: str = MODULE,
                 root: str = "lvxMIB") -> None:
        self.module = module
        self._tcs: dict[str, Mapping[str, Any]] = {}
        for source in modules.values():
            for name, node in source.items():
                if isinstance(node, dict) and node.get("class") == "textualconvention":
                    self._tcs[name] = node
        own = modules[module]
        self.objects: dict[str, MibObject] = {}
        self.notifications: dict[str, Notification] = {}
        for name, node in own.items():
            if not isinstance(node, dict) or "oid" not in node:
                continue
            oid = parse_oid(node["oid"])
            if node.get("class") == "notificationtype":
                self.notifications[name] = Notification(
                    name, oid, tuple(o["object"] for o in node.get("objects", ())))
                continue
            syntax = self._syntax(node["syntax"]) if "syntax" in node else None
            self.objects[name] = MibObject(
                name=name, oid=oid, nodetype=node.get("nodetype", ""),
                access=node.get("maxaccess", ""), syntax=syntax,
                indices=tuple((i["object"], bool(i.get("implied")))
                              for i in node.get("indices", ())),
                units=node.get("units"))
        # An object's name, or a dotted OID for a subtree above the module's objects.
        self.root: OID = parse_oid(root) if root[:1].isdigit() else self.object(root).oid

    def _syntax(self, spec: Mapping[str, Any]) -> Syntax:
        name = spec["type"]
        found = _constraints(spec)
        tc_name: Optional[str] = None
        while name not in _BASE_TYPES:
            tc = self._tcs.get(name)
            if tc is None:
                raise MibError(f"type {name!r} is neither an SMI base type nor a known "
                               "textual convention")
            tc_name = tc_name or name
            for key, value in _constraints(tc["type"]).items():
                found.setdefault(key, value)
            name = tc["type"]["type"]
        return Syntax(base=_BASE_TYPES[name], tc=tc_name, **found)

    def object(self, name: str) -> MibObject:
        """The object called ``name``; MibError when the module has none."""
        try:
            return self.objects[name]
        except KeyError:
            raise MibError(f"{self.module} defines no object {name!r}") from None

    def notification(self, name: str) -> Notification:
        try:
            return self.notifications[name]
        except KeyError:
            raise MibError(f"{self.module} defines no notification {name!r}") from None

    def columns(self, entry: str) -> list[MibObject]:
        """The columns of a row object, in OID order."""
        row = self.object(entry)
        return sorted((o for o in self.objects.values()
                       if o.nodetype == "column" and o.oid[:-1] == row.oid),
                      key=lambda o: o.oid)

    def served(self) -> Iterator[MibObject]:
        """Every scalar and column an SNMP manager can read, in OID order."""
        return iter(sorted((o for o in self.objects.values()
                            if o.nodetype in ("scalar", "column") and o.readable),
                           key=lambda o: o.oid))


def load_compiled(directory: Path = COMPILED_DIR, module: str = MODULE,
                  root: str = "lvxMIB", tc_modules: tuple[str, ...] = TC_MODULES,
                  moved: Optional[tuple[str, str]] = None) -> Mib:
    """Read ``module`` and the modules of its textual conventions from ``directory``.

    ``moved`` = (old, new) serves the module under another arc: every OID of it that
    starts with the dotted ``old`` starts with ``new`` instead.
    """
    modules = {}
    for name in (module, *tc_modules):
        path = directory / f"{name}.json"
        try:
            modules[name] = json.loads(path.read_text())
        except (OSError, ValueError) as exc:
            raise MibError(f"cannot read the compiled MIB {path}: {exc}") from None
    if moved is not None:
        modules[module] = _moved(modules[module], *moved)
    return Mib(modules, module, root)


def _moved(module: Mapping[str, Any], old: str, new: str) -> dict[str, Any]:
    found: dict[str, Any] = {}
    for name, node in module.items():
        oid = node.get("oid") if isinstance(node, dict) else None
        if isinstance(oid, str) and (oid == old or oid.startswith(old + ".")):
            node = {**node, "oid": new + oid[len(old):]}
        found[name] = node
    return found


@functools.lru_cache(maxsize=1)
def shipped_mib() -> Mib:
    """The compiled MIB shipped with the package (loaded once)."""
    return load_compiled()
