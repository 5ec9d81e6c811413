"""An active alarm: one metric of one domain above its threshold now (``lvxAlarmTable``)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

# The metrics a threshold can watch, in lvxAlarmMetric's order (1-based): lvxDomainTable
# gauges, named as the MIB names their columns (the first twelve and LATER_GAUGES), and
# rates over the last two polls, summed over the domain's NICs or disks.
GAUGE_METRICS = ("lvxDomainCpuUtilVcpus", "lvxDomainCpuUtilHost", "lvxDomainMemRssKiB",
                 "lvxDomainMemoryCurrentKiB", "lvxDomainMemoryMaximumKiB",
                 "lvxDomainBalloonActualKiB", "lvxDomainMemUnusedKiB",
                 "lvxDomainMemUsableKiB", "lvxDomainMemAvailableKiB",
                 "lvxDomainVcpusCurrent", "lvxDomainVcpusMaximum",
                 "lvxDomainDataAgeSeconds")
RATE_METRICS = ("nicRxBitsPerSecond", "nicTxBitsPerSecond", "diskReadBytesPerSecond",
                "diskWriteBytesPerSecond", "diskReadIops", "diskWriteIops")
LATER_GAUGES = ("lvxDomainMemUsedKiB",)      # gauges added after the rates (numbers kept)
ALARM_METRICS = GAUGE_METRICS + RATE_METRICS + LATER_GAUGES
SEVERITIES = ("warning", "failure")


def metric_number(metric: str) -> int:
    """lvxAlarmMetric of ``metric`` (1-based position in ALARM_METRICS)."""
    return ALARM_METRICS.index(metric) + 1


@dataclass(frozen=True)
class ActiveAlarm:
    uuid: str            # canonical (lower case)
    domain: str          # its name when the alarm was last evaluated
    metric: str          # one of ALARM_METRICS
    value: int           # as of the last poll evaluated
    threshold: int       # the rising value crossed
    severity: str        # one of SEVERITIES
    since: datetime      # when the crossing was counted (UTC)
    rule: str            # where the rule that raised it is configured
