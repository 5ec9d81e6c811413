"""The tests' own check of a served value against its MIB syntax.

Written apart from the table builder's converters (``agentx_virt.mib.convert``),
so that a test of the builder does not trust the code it tests.
"""

from __future__ import annotations

from typing import Optional

from agentx_virt.mib.model import Syntax


def violation(syntax: Syntax, value: object) -> Optional[str]:
    """Why ``value`` (already in wire form) breaks ``syntax``, or None."""
    if isinstance(value, int):
        if syntax.enum and value not in syntax.enum.values():
            return f"{value} is not one of {sorted(syntax.enum.values())}"
        if syntax.ranges and not any(lo <= value <= hi for lo, hi in syntax.ranges):
            return f"{value} is outside {list(syntax.ranges)}"
    elif isinstance(value, bytes):
        if syntax.sizes and not any(lo <= len(value) <= hi for lo, hi in syntax.sizes):
            return f"length {len(value)} is outside {list(syntax.sizes)}"
    return None
