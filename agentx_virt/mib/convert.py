"""Snapshot values → what a MIB object's syntax puts on the wire: one converter per object.

Each converter checks only what its syntax needs (enumerations, ranges, sizes,
textual conventions such as TruthValue and DateAndTime) and raises ``Reject``
for a value the syntax does not allow.  Text longer than its object's SIZE is
not rejected: it is cut at a UTF-8 character boundary and served (a domain with
a 300-byte name keeps its row and its traps), and the first such value of each
object is logged, shortened.
"""

from __future__ import annotations

import logging
import struct
from datetime import datetime, timezone
from typing import Callable

from agentx_virt.mib.model import MibError, MibObject, Syntax
from agentx_virt.snmp.table import Stored
from agentx_virt.snmp.types import Value, ValueType

log = logging.getLogger(__name__)

# What the wire types can carry at all (the MIB may narrow it further).
_BASE_RANGES = {
    ValueType.INTEGER: (-(2**31), 2**31 - 1),
    ValueType.COUNTER32: (0, 2**32 - 1),
    ValueType.GAUGE32: (0, 2**32 - 1),
    ValueType.TIME_TICKS: (0, 2**32 - 1),
    ValueType.COUNTER64: (0, 2**64 - 1),
}


class Reject(Exception):
    """A value the MIB's syntax does not allow; the message says why."""


def date_and_time(when: datetime) -> bytes:
    """SNMPv2-TC DateAndTime in UTC (11 octets)."""
    if when.tzinfo is None:
        raise Reject("a time without a time zone cannot be a DateAndTime")
    utc = when.astimezone(timezone.utc)
    return struct.pack(">HBBBBBBcBB", utc.year, utc.month, utc.day, utc.hour, utc.minute,
                       utc.second, utc.microsecond // 100000, b"+", 0, 0)


Converter = Callable[[object], Stored]


def _check_length(sizes: tuple[tuple[int, int], ...], length: int) -> None:
    if sizes and not any(low <= length <= high for low, high in sizes):
        raise Reject(f"length {length} is outside {list(sizes)}")


def _sizes_check(sizes: tuple[tuple[int, int], ...]) -> Callable[[bytes], bytes]:
    def check(wire: bytes) -> bytes:
        _check_length(sizes, len(wire))
        return wire
    return check


def cut_text(text: str, limit: int) -> str:
    """The longest start of ``text`` whose UTF-8 form fits ``limit`` bytes, cut between
    characters (never inside one)."""
    return text.encode("utf-8")[:limit].decode("utf-8", "ignore")


# Objects whose over-long text was logged, so each is reported once per agent run.
_CUT_REPORTED: set[str] = set()


def _report_cut(name: str, text: str, length: int, limit: int) -> None:
    if name in _CUT_REPORTED:
        return
    _CUT_REPORTED.add(name)
    shown = text if len(text) <= 60 else text[:60] + "..."
    log.warning("%s: a value of %d bytes is longer than the MIB's %d; served cut at a "
                "character boundary (reported once per object): %r", name, length, limit,
                shown)


def _text_check(name: str, sizes: tuple[tuple[int, int], ...]) -> Callable[[str], str]:
    """Checks the length text has once UTF-8 encoded, cutting text over the largest size
    the syntax allows; the table keeps the text itself."""
    limit = max((high for _low, high in sizes), default=None)

    def check(text: str) -> str:
        if text.isascii():
            length = len(text)
        else:
            try:
                length = len(text.encode("utf-8"))
            except UnicodeEncodeError:
                raise Reject("text that is not valid Unicode") from None
        if limit is not None and length > limit:
            _report_cut(name, text, length, limit)
            text = cut_text(text, limit)
            length = len(text.encode("utf-8"))
        _check_length(sizes, length)
        return text
    return check


def converter(obj: MibObject) -> Converter:
    """A function from a snapshot value to what ``obj``'s syntax puts on the wire.

    Built once per object and build, so each value pays only for the checks its
    syntax needs; raises Reject for a value the syntax does not allow.
    """
    syntax = obj.syntax
    assert syntax is not None, obj.name
    by_tc = _TEXTUAL_CONVENTIONS.get(syntax.tc or "")
    if by_tc is not None:
        return by_tc(syntax)
    if syntax.base is ValueType.OCTET_STRING:
        return _octets(obj.name, syntax)
    if syntax.base in _BASE_RANGES:
        return _integer(syntax)
    if syntax.base is ValueType.OBJECT_IDENTIFIER:
        return _object_identifier
    raise MibError(f"{obj.name}: no conversion to {syntax.base.name}")


def _object_identifier(value: object) -> Value:
    if not (isinstance(value, tuple) and 2 <= len(value) <= 128
            and all(type(sub) is int and 0 <= sub < 2**32 for sub in value)):
        raise Reject("not an OBJECT IDENTIFIER")
    return value


def _truth(syntax: Syntax) -> Converter:
    true, false = syntax.enum["true"], syntax.enum["false"]

    def truth(value: object) -> Value:
        if not isinstance(value, bool):
            raise Reject("TruthValue needs a bool")
        return true if value else false
    return truth


def _when(_syntax: Syntax) -> Converter:
    def when(value: object) -> Value:
        if not isinstance(value, datetime):
            raise Reject("DateAndTime needs a datetime")
        return date_and_time(value)
    return when


def _mac(syntax: Syntax) -> Converter:
    sized = _sizes_check(syntax.sizes)

    def mac(value: object) -> Value:
        try:
            wire = bytes.fromhex(str(value).replace(":", "").replace("-", ""))
        except ValueError:
            raise Reject("not a MAC address") from None
        return sized(wire)
    return mac


def _uuid(_syntax: Syntax) -> Converter:
    def uuid_octets(value: object) -> Value:
        digits = str(value).replace("-", "")
        try:
            if len(digits) != 32:
                raise ValueError(digits)
            return bytes.fromhex(digits)
        except ValueError:
            raise Reject("not a UUID") from None
    return uuid_octets


_TEXTUAL_CONVENTIONS: dict[str, Callable[[Syntax], Converter]] = {
    "TruthValue": _truth, "DateAndTime": _when, "MacAddress": _mac, "LvxUuid": _uuid}


def _octets(name: str, syntax: Syntax) -> Converter:
    text = _text_check(name, syntax.sizes)
    sized = _sizes_check(syntax.sizes)

    def octets(value: object) -> Stored:
        if isinstance(value, str):
            return text(value)
        if isinstance(value, bytes):
            return sized(value)
        raise Reject(f"{type(value).__name__} for a string object")
    return octets


def _integer(syntax: Syntax) -> Converter:
    low, high = _BASE_RANGES[syntax.base]
    base_name = syntax.base.name
    enum = dict(syntax.enum)
    allowed = frozenset(enum.values()) if enum else None
    ranges = syntax.ranges

    def integer(value: object) -> Value:
        if type(value) is int:
            wire = value
        elif isinstance(value, str) and enum:
            if value not in enum:
                raise Reject(f"{value!r} is not one of {sorted(enum)}")
            wire = enum[value]
        else:
            raise Reject(f"{type(value).__name__} for an integer object")
        if not low <= wire <= high:
            raise Reject(f"{wire} does not fit {base_name}")
        if allowed is not None and wire not in allowed:
            raise Reject(f"{wire} is not one of {sorted(allowed)}")
        if ranges and not any(lo <= wire <= hi for lo, hi in ranges):
            raise Reject(f"{wire} is outside {list(ranges)}")
        return wire
    return integer
