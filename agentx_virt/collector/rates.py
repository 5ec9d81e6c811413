"""A fresh sample → the domain's DomainStats, with the rates two samples give.

Pure: no libvirt, no clock (the sample carries when its CPU time was read).
cpu_util is the CPU time used between two samples over the time between them,
against the domain's vCPUs and against the host's CPUs, in hundredths of a
percent; a CPU time that goes back, or a domain that starts, begins a new
counter discontinuity.  When the domain started is kept from poll to poll: the
QEMU process's start when libvirt is local and the lookup finds it, else the poll
that first found it running after finding it inactive (unknown for a domain that
was already running when the agent first saw it).
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Callable, Optional

from agentx_virt.collector.sample import Sample
from agentx_virt.model.libvirt_names import ACTIVE_STATES
from agentx_virt.model.snapshot import DomainStats, HostInfo, PollStatus

if TYPE_CHECKING:
    from agentx_virt.collector.refs import DomainRef


def fresh_stats(ref: DomainRef, reader: int, sample: Sample, wall: datetime,
                previous: Optional[tuple[DomainStats, int]], host: HostInfo, cpu_util: bool,
                process_start: Callable[[str], Optional[datetime]]) -> DomainStats:
    """The stats of a fresh ``sample``; ``previous`` is the last good stats with the
    monotonic ns their CPU time was read at; ``cpu_util``: compute the rates;
    ``process_start`` finds when a local QEMU domain's process started."""
    host_cpus = host.host_cpus
    values = sample.values
    cpu = values.get("cpu_time_total_ns")
    util_vcpus = util_host = None
    discontinuity = wall if previous is None else previous[0].discontinuity_time
    before, taken_ns = previous if previous is not None else (None, 0)
    previous_cpu = None if before is None else before.cpu_time_total_ns
    restarted = False
    if before is not None and cpu is not None and previous_cpu is not None:
        if cpu < previous_cpu or (before.state not in ACTIVE_STATES
                                  and values.get("state") == 1):
            discontinuity = wall       # restarted or migrated in: counters start over
            restarted = True
        elif cpu_util:
            elapsed_ns = sample.taken_ns - taken_ns
            used_ns = cpu - previous_cpu
            if elapsed_ns > 0:
                vcpus = values.get("vcpus_current") or len(values.get("vcpus", ())) or None
                if vcpus:
                    util_vcpus = min(10000, round(used_ns * 10000 / (elapsed_ns * vcpus)))
                if host_cpus:
                    util_host = min(10000, round(used_ns * 10000 / (elapsed_ns * host_cpus)))
    return DomainStats(
        **ref.described(), reader=reader, poll_status=PollStatus.OK, data_age_s=0,
        cpu_util_vcpus=util_vcpus, cpu_util_host=util_host,
        discontinuity_time=discontinuity, sampled_at=wall,
        started_at=_started(ref.uuid, values.get("state"), before, restarted, wall, host,
                            process_start), **values)


def _started(uuid: str, state: Optional[int], before: Optional[DomainStats], restarted: bool,
             wall: datetime, host: HostInfo,
             process_start: Callable[[str], Optional[datetime]]) -> Optional[datetime]:
    """When the domain last started: None while it is not running or when unknown."""
    if state not in ACTIVE_STATES:
        return None
    if before is not None and before.state in ACTIVE_STATES and not restarted \
            and before.started_at is not None:
        return before.started_at
    if host.boot_time is not None and host.hypervisor_type == "QEMU":
        found = process_start(uuid)
        if found is not None:
            return found
    if before is not None and (restarted or before.state not in ACTIVE_STATES):
        return wall                # started since the last poll, which found it down
    return None
