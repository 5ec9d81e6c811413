"""``[[metadata]]``: domain metadata fields an operator adds to ``lvxMetadataTable``::

    [[metadata]]
    key = "billing.customer"                      # the row's key (1 to 64 octets)
    namespace = "http://example.com/billing/1.0"  # the metadata element's namespace
    path = "customer/@id"                         # under that element; "" is its text

Every problem names the file, the line and the key.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from agentx_virt.model.metadata import KEY_MAX, NOVA_FIELDS, MetadataField, parse_path

_KEYS = {"key", "namespace", "path"}


def _field(table: dict[str, Any], taken: set[str]) -> MetadataField:
    unknown = sorted(set(table) - _KEYS)
    if unknown or not {"key", "namespace"} <= set(table):
        raise ValueError(f"needs key and namespace, and knows key, namespace, path; got "
                         f"keys {sorted(table)}")
    key, namespace, path = table["key"], table["namespace"], table.get("path", "")
    if not all(isinstance(v, str) for v in (key, namespace, path)):
        raise ValueError("key, namespace and path must be strings")
    if not key or len(key.encode()) > KEY_MAX:
        raise ValueError(f"key must be 1 to {KEY_MAX} octets, got {key!r}")
    if key in taken or key in {k for k, _, _ in NOVA_FIELDS}:
        raise ValueError(f"key {key!r} is already used (by another [[metadata]] or by "
                         f"nova's fields)")
    if not re.match(r"[a-zA-Z][a-zA-Z0-9+.-]*:", namespace):
        raise ValueError(f"namespace must be a URI, got {namespace!r}")
    steps, attribute = parse_path(path)
    return MetadataField(key, namespace, steps, attribute)


def metadata_list(path: Path, text: str, tables: Any) -> tuple[list[MetadataField], list[str]]:
    """The fields of the ``[[metadata]]`` tables, and the problems."""
    headers = [n for n, line in enumerate(text.splitlines(), 1)
               if re.match(r"\s*\[\[?\s*metadata\s*\]", line)]
    if not isinstance(tables, list) or not all(isinstance(t, dict) for t in tables):
        return [], [f"{path}:{(headers or [0])[0]}: metadata must be written as "
                    f"[[metadata]] tables"]
    fields: list[MetadataField] = []
    problems = []
    for n, table in enumerate(tables):
        try:
            fields.append(_field(table, {f.key for f in fields}))
        except ValueError as exc:
            line = headers[n] if n < len(headers) else 0
            problems.append(f"{path}:{line}: [[metadata]] #{n + 1}: {exc}")
    return fields, problems
