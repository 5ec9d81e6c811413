"""Trap latency and a trap storm, end to end through snmpd to a real snmptrapd.

A private libvirtd serves the test driver (root needed); the agent watches it
through a private snmpd whose trap sink is a private snmptrapd (TCP).  Latency
is the time from a libvirt state change returning (``suspend()``/``resume()``)
to its line appearing in snmptrapd's log.  The storm makes CHANGES changes as
fast as four threads can and counts what arrives.

The last line is ``p50_ms=.. p99_ms=.. storm_changes=.. sent=.. received=..
duplicated=.. lost=..``.

    python bench/trap_latency.py --samples 200 --changes 2000
"""

from __future__ import annotations

import argparse
import logging
import re
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

import libvirt

from agentx_virt.app.config import Config
from agentx_virt.app.daemon import Agent
from agentx_virt.demo.agent_thread import AgentThread
from agentx_virt.demo.snmpd import PrivateSnmpd
from agentx_virt.mib.model import shipped_mib
from agentx_virt.oid import format_oid

# The private peers live with the tests (tests/support), beside this directory.
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from tests.support.libvirtd import PrivateLibvirtd
from tests.support.snmptrapd import PrivateSnmptrapd
from tests.support.testdriver import define_domain

DOMAINS = 20


def wait_for_lines(log: Path, count: int, timeout: float) -> float:
    """Poll the log until it has ``count`` TRAP lines; returns when that was seen."""
    deadline = time.perf_counter() + timeout
    while time.perf_counter() < deadline:
        if log.read_bytes().count(b"\nTRAP ") >= count:
            return time.perf_counter()
        time.sleep(0.0002)
    arrived = log.read_bytes().count(b"\nTRAP ")
    raise SystemExit(f"only {arrived} of {count} traps arrived")


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--samples", type=int, default=200)
    parser.add_argument("--changes", type=int, default=2000)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.ERROR)
    libvirt.registerErrorHandler(lambda _c, _e: None, None)
    work = Path(tempfile.mkdtemp(prefix="axv-traps-"))
    with PrivateLibvirtd(work / "libvirtd") as daemon:
        uri = daemon.test_uri
        holder = libvirt.open(uri)
        for number in range(1, DOMAINS + 1):
            define_domain(holder, number)
        with PrivateSnmptrapd(work / "trapd", transport="tcp") as trapd, \
                PrivateSnmpd(work / "snmpd", trap_port=trapd.port,
                             trap_transport="tcp") as snmpd:
            agent = Agent(Config(uri=uri, agentx=snmpd.agentx_address, interval_s=2,
                                 domain_timeout_s=1, state_dir=work / "state"))
            running = AgentThread(agent).start()
            if not running.wait_ready(60):
                raise SystemExit("the agent did not poll every domain and register")
            time.sleep(1)
            log = trapd.log_path
            dom = holder.lookupByName("vm0001")
            latencies = []
            seen = log.read_bytes().count(b"\nTRAP ")
            for sample in range(args.samples):
                change = dom.suspend if sample % 2 == 0 else dom.resume
                change()
                returned = time.perf_counter()
                seen += 1
                latencies.append((wait_for_lines(log, seen, 10) - returned) * 1000)
            latencies.sort()
            p50 = statistics.median(latencies)
            p99 = latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))]
            print(f"latency over {len(latencies)} changes: p50 {p50:.2f} ms, p99 {p99:.2f} ms, "
                  f"max {latencies[-1]:.2f} ms")

            names = [f"vm{n:04d}" for n in range(1, DOMAINS + 1)]   # vm0001 ends running
            pairs = max(1, args.changes // (2 * len(names)))
            total = 2 * pairs * len(names)
            sent_before = agent.traps.stats().sent
            before = seen

            def flap(group: list[str]) -> None:
                conn = libvirt.open(uri)
                try:
                    doms = [conn.lookupByName(n) for n in group]
                    for _ in range(pairs):
                        for d in doms:
                            d.suspend()
                            d.resume()
                finally:
                    conn.close()

            started = time.perf_counter()
            workers = [threading.Thread(target=flap, args=(names[k::4],)) for k in range(4)]
            for worker in workers:
                worker.start()
            for worker in workers:
                worker.join()
            changes_s = time.perf_counter() - started
            try:
                wait_for_lines(log, before + total, 120)
            except SystemExit as exc:
                print(exc)
            lines = log.read_text().split("\nTRAP ")[1 + before:]
            received = len(lines)
            sent = agent.traps.stats().sent - sent_before
            state = re.compile(re.escape(format_oid(shipped_mib().object("lvxDomainState").oid))
                               + r"\.\d+ = INTEGER: (\d+)")
            in_order = sum(
                1 for name in names
                if [m.group(1) for line in lines if f'"{name}"' in line
                    for m in [state.search(line)] if m] == ["3", "1"] * pairs)
            running.stop()
    duplicated = max(0, received - total)
    lost = max(0, total - received)
    print(f"storm: {total} changes in {changes_s:.2f} s; {sent} traps acknowledged by snmpd, "
          f"{received} logged by snmptrapd; {in_order} of {len(names)} domains got exactly "
          f"their sequence (paused, running) x {pairs} in order")
    print(f"p50_ms={p50:.2f} p99_ms={p99:.2f} storm_changes={total} sent={sent} "
          f"received={received} duplicated={duplicated} lost={lost}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
