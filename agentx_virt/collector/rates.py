"""A fresh sample → the domain's DomainStats, with the rates two samples give.

Pure: no libvirt, no clock (the sample carries when its CPU time was read).
cpu_util is the CPU time used between two samples over the time between them,
against the domain's vCPUs and against the host's CPUs, in hundredths of a
percent; a CPU time that goes back, or a domain that starts, begins a new
counter discontinuity.
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Optional

from agentx_virt.collector.sample import ACTIVE_STATES, Sample
from agentx_virt.model.snapshot import DomainStats, PollStatus

if TYPE_CHECKING:
    from agentx_virt.collector.refs import DomainRef


def fresh_stats(ref: DomainRef, reader: int, sample: Sample, wall: datetime,
                previous: Optional[tuple[DomainStats, int]], host_cpus: Optional[int],
                cpu_util: bool) -> DomainStats:
    """The stats of a fresh ``sample``; ``previous`` is the last good stats with the
    monotonic ns their CPU time was read at; ``cpu_util``: compute the rates."""
    values = sample.values
    cpu = values.get("cpu_time_total_ns")
    util_vcpus = util_host = None
    discontinuity = wall if previous is None else previous[0].discontinuity_time
    before, taken_ns = previous if previous is not None else (None, 0)
    previous_cpu = None if before is None else before.cpu_time_total_ns
    if before is not None and cpu is not None and previous_cpu is not None:
        if cpu < previous_cpu or (before.state not in ACTIVE_STATES
                                  and values.get("state") == 1):
            discontinuity = wall       # restarted or migrated in: counters start over
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
        discontinuity_time=discontinuity, **values)
