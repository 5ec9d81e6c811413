"""Memory over many polls (bounded: about a minute): 1,000 in-process test-driver domains
polled back to back 200 times through the poller's own threads, every snapshot built into
the served table as the agent does; what the process holds after the 200th poll is what
it held after the 50th (caches filled, slow data re-read several times)."""

from __future__ import annotations

import ctypes
import gc
import threading
import time
from pathlib import Path

import pytest

from agentx_virt.agentx.store import ServedStore
from agentx_virt.app.config import Config
from agentx_virt.collector.poller import Poller
from agentx_virt.demo.node import node_xml
from agentx_virt.expose.snmp import SnmpSink
from agentx_virt.mib.views import DEFAULT_MIBS, VIEWS
from agentx_virt.model.snapshot import Snapshot
from agentx_virt.snmp.domain_index import DomainIndexRegistry

pytestmark = pytest.mark.long
DOMAINS = 1000
WARM, POLLS = 50, 200
GROWTH_LIMIT_MB = 3.0          # 3 KB per domain; a leak of one object per domain per poll
                               # of 50 bytes would show as 7.5 MB


def anonymous_mb() -> float:
    """The process's private resident memory (RssAnon), MB, after a collection and with
    the C library's free memory handed back (so the figure is what is held)."""
    gc.collect()
    try:
        ctypes.CDLL(None).malloc_trim(0)
    except AttributeError:
        pass
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("RssAnon:"):
            return int(line.split()[1]) / 1024
    raise AssertionError("no RssAnon in /proc/self/status")


def test_memory_does_not_grow_over_200_polls_of_1000_domains(tmp_path: Path) -> None:
    path = tmp_path / "node.xml"
    path.write_text(node_xml(DOMAINS, tags=3))
    registry = DomainIndexRegistry()
    store = ServedStore()
    sink = SnmpSink(store, [(VIEWS[name], VIEWS[name].load()) for name in DEFAULT_MIBS],
                    lambda s: registry.index_domains(s.domains, time.time()))
    cycles: dict[str, int] = {}
    done = threading.Event()
    figures: dict[int, float] = {}

    def published(snapshot: Snapshot) -> None:
        sink.publish(snapshot)
        started = snapshot.poll.last_poll_start
        if started is not None and started.isoformat() not in cycles:
            cycles[started.isoformat()] = len(cycles) + 1
            if len(cycles) in (WARM, POLLS):
                figures[len(cycles)] = anonymous_mb()
            if len(cycles) >= POLLS:
                done.set()

    poller = Poller(Config(uri=f"test://{path}", interval_s=0.25, domain_timeout_s=30),
                    published)
    poller.start()
    try:
        assert done.wait(600), f"only {len(cycles)} polls in 600 s"
    finally:
        poller.stop()
    assert len(store.table) > 100 * DOMAINS
    growth = figures[POLLS] - figures[WARM]
    assert growth < GROWTH_LIMIT_MB, (
        f"private memory grew {growth:.1f} MB from poll {WARM} ({figures[WARM]:.1f} MB) "
        f"to poll {POLLS} ({figures[POLLS]:.1f} MB)")
