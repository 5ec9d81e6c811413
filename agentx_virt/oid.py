"""Object identifiers as tuples of non-negative integers, and their text form."""

from __future__ import annotations

OID = tuple[int, ...]

MAX_SUBID = 0xFFFFFFFF
MAX_OID_LENGTH = 128  # RFC 2578 §3.5: at most 128 sub-identifiers


def parse_oid(text: str) -> OID:
    """Parse dotted decimal (``1.3.6.1`` or ``.1.3.6.1``) into an OID tuple.

    Raises:
        ValueError: the text is not a dotted-decimal OID; the message quotes it.
    """
    body = text.strip()
    if body.startswith("."):
        body = body[1:]
    if not body:
        return ()
    try:
        oid = tuple(int(part, 10) for part in body.split("."))
    except ValueError:
        raise ValueError(f"not a dotted-decimal OID: {text!r}") from None
    check_oid(oid)
    return oid


def check_oid(oid: OID) -> None:
    """Raise ValueError unless every sub-identifier fits in 32 bits and the length is legal."""
    if len(oid) > MAX_OID_LENGTH:
        raise ValueError(f"OID has {len(oid)} sub-identifiers, more than {MAX_OID_LENGTH}")
    for sub in oid:
        if not 0 <= sub <= MAX_SUBID:
            raise ValueError(f"OID sub-identifier {sub} is outside 0..{MAX_SUBID}")


def format_oid(oid: OID) -> str:
    """Dotted decimal with a leading dot, as net-snmp prints with ``-On``."""
    return "." + ".".join(str(sub) for sub in oid)


def is_prefix(prefix: OID, oid: OID) -> bool:
    """True when ``oid`` lies in the subtree rooted at ``prefix`` (or equals it)."""
    return oid[: len(prefix)] == prefix
