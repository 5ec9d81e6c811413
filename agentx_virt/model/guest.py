"""What a domain's guest agent (qemu-ga) says about the guest: ``lvxGuestTable`` and
``lvxGuestAddressTable``, and the file systems of ``lvxFsTable``."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Optional

from agentx_virt.model.record import slotted

# How the guest agent answered the last time it was asked (lvxGuestAgentStatus).
AGENT_STATUSES = ("responding", "notConnected", "unresponsive", "notConfigured", "denied",
                  "failed")


@slotted
@dataclass(frozen=True)
class GuestAddress:
    interface: str
    mac: Optional[str]
    family: str                  # "ipv4" or "ipv6"
    address: str
    prefix: Optional[int]


@slotted
@dataclass(frozen=True)
class GuestFilesystem:
    mount_point: str
    device: Optional[str] = None
    fs_type: Optional[str] = None
    disk_targets: tuple[str, ...] = ()
    total_bytes: Optional[int] = None
    used_bytes: Optional[int] = None


@slotted
@dataclass(frozen=True)
class GuestInfo:
    """The last answer (its values stay while the agent is away) and the last status."""

    status: str                           # one of AGENT_STATUSES
    asked_at: datetime                    # the last time it was asked
    answered_at: Optional[datetime] = None   # the last time it answered
    error: Optional[str] = None           # why the last ask failed
    hostname: Optional[str] = None
    os_id: Optional[str] = None
    os_name: Optional[str] = None
    os_version: Optional[str] = None
    kernel_release: Optional[str] = None
    timezone: Optional[str] = None
    timezone_offset_s: Optional[int] = None
    users: Optional[int] = None
    clock_offset_ms: Optional[int] = None    # guest clock minus host clock
    addresses: tuple[GuestAddress, ...] = ()
    filesystems: tuple[GuestFilesystem, ...] = ()
