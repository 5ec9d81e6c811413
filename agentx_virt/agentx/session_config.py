"""What an AgentX session is told: where the master is, what to register, its timers."""

from __future__ import annotations

from dataclasses import dataclass

from agentx_virt.agentx.address import MasterAddress
from agentx_virt.oid import OID


@dataclass(frozen=True)
class SessionConfig:
    """How to reach the master and what to register there."""

    address: MasterAddress
    subtrees: tuple[OID, ...]
    subtree_names: tuple[str, ...] = ()   # what each subtree serves (a MIB), for messages
    ident: OID = ()                # o.id of Open: the agent's MIB module; () is the null OID
    description: str = "agentx-virt"
    priority: int = 127
    open_timeout: int = 5          # o.timeout in seconds (snmpd uses its own agentXTimeout)
    connect_timeout: float = 2.0
    response_timeout: float = 5.0  # for the master's answers to Open/Register/Ping/Notify/Close
    ping_interval: float = 15.0    # idle time before a Ping checks that the master is alive
    backoff_first: float = 0.1
    backoff_max: float = 1.0
    notify_window: int = 32        # Notify PDUs in flight at once
