"""Domain metadata the agent serves (``lvxMetadataTable``): OpenStack nova's, and fields
an operator names by XML namespace and path."""

from __future__ import annotations

import re
from dataclasses import dataclass

NOVA_NS_PREFIX = "http://openstack.org/xmlns/libvirt/nova/"   # 1.0, 1.1, 1.2 ...
# key -> (path under <nova:instance>, attribute or "" for the element's text)
NOVA_FIELDS = (
    ("nova.name", "name", ""), ("nova.creationTime", "creationTime", ""),
    ("nova.flavor", "flavor", "name"), ("nova.vcpus", "flavor/vcpus", ""),
    ("nova.memoryMiB", "flavor/memory", ""), ("nova.diskGiB", "flavor/disk", ""),
    ("nova.user", "owner/user", ""), ("nova.userId", "owner/user", "uuid"),
    ("nova.project", "owner/project", ""), ("nova.projectId", "owner/project", "uuid"),
    ("nova.image", "root", "uuid"),
)
KEY_MAX = 64                          # octets of a key (lvxMetaKey's SIZE)
_STEP = re.compile(r"[A-Za-z_][\w.-]*")


@dataclass(frozen=True)
class MetadataField:
    """``[[metadata]]``: the text (or ``@attribute``) at ``path`` under the domain's
    metadata element of ``namespace``; every step of the path is in that namespace."""

    key: str
    namespace: str
    steps: tuple[str, ...]            # element names under the namespace's element
    attribute: str = ""               # "" for the last element's text


def parse_path(path: str) -> tuple[tuple[str, ...], str]:
    """``a/b/@c`` -> (("a", "b"), "c"); ``.`` or ``""`` is the element itself.

    Raises:
        ValueError: a step that is not an XML name.
    """
    parts = [p for p in path.strip().strip("/").split("/") if p not in ("", ".")]
    attribute = ""
    if parts and parts[-1].startswith("@"):
        attribute = parts.pop()[1:]
        if not _STEP.fullmatch(attribute):
            raise ValueError(f"@{attribute} is not an attribute name")
    for step in parts:
        if not _STEP.fullmatch(step):
            raise ValueError(f"step {step!r} is not an element name (a path is element "
                             f"names separated by '/', optionally ending in @attribute)")
    return tuple(parts), attribute
