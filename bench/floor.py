"""What the agent cannot go below: the memory of the interpreter with libvirt and the
agent's modules loaded, and the client CPU of each libvirt call a poll of one running
domain makes on a remote libvirtd's test driver (whose bulk statistics hold only the
state, so the rest is asked call by call).

Starts a private libvirtd (root) with ``--domains`` test-driver domains; each call is made
``--repeat`` times back to back on one read-only connection with libvirt's event loop
running, as in the agent.  The last line is
``rss_floor_mb=<m> libvirt_import_mb=<m> call_cpu_us_per_domain=<c>``.

    python bench/floor.py --domains 1000
"""

from __future__ import annotations

import argparse
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Callable

REPO = Path(__file__).resolve().parents[1]
# The calls one poll of a running test-driver domain with two disks and two NICs makes
# each cycle (the slowly changing ones are left out: they are made every 6th poll).
PER_CYCLE = ("info", "getCPUStats", "vcpus", "blockStats vda", "blockStats sdb",
             "interfaceStats n0", "interfaceStats n1")


def rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def memory_floor(uri: str) -> str:
    """RSS steps of a fresh interpreter: bare, libvirt imported, the agent's modules, one
    connection with its domains listed (run as a child so nothing else is loaded)."""
    code = f"""
import sys; sys.path.insert(0, {str(REPO)!r})
from bench.floor import rss_mb
steps = [("interpreter", rss_mb())]
import libvirt
steps.append(("import libvirt", rss_mb()))
from agentx_virt.app import cli, daemon
from agentx_virt.mib.views import DEFAULT_MIBS, VIEWS
views = [VIEWS[name].load() for name in DEFAULT_MIBS]
steps.append(("agent modules and MIBs", rss_mb()))
from agentx_virt.collector.connection import Connection
conn = Connection({uri!r}, "floor")
conn.conn.listAllDomains(0)
steps.append(("a connection, domains listed", rss_mb()))
print(";".join(f"{{name}}={{mb:.1f}}" for name, mb in steps))
"""
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          check=True, stdin=subprocess.DEVNULL)
    return done.stdout.strip().splitlines()[-1]


def cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def per_call(calls: dict[str, Callable[[], Any]], repeat: int) -> dict[str, float]:
    """Client CPU (all threads, the event loop's included) per call, microseconds."""
    costs = {}
    for name, call in calls.items():
        call()
        before = cpu_s()
        for _ in range(repeat):
            call()
        costs[name] = (cpu_s() - before) / repeat * 1e6
    return costs


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--domains", type=int, default=1000)
    parser.add_argument("--repeat", type=int, default=2000)
    args = parser.parse_args(argv)
    sys.path.insert(0, str(REPO))
    import libvirt

    from agentx_virt.collector.connection import Connection
    from tests.support.libvirtd import PrivateLibvirtd
    from tests.support.testdriver import define_domains

    libvirt.registerErrorHandler(lambda _c, _e: None, None)
    work = Path(tempfile.mkdtemp(prefix="axv-floor-"))
    with PrivateLibvirtd(work / "libvirtd") as daemon:
        holder = libvirt.open(daemon.test_uri)   # keeps test:///default's domains
        define_domains(holder, args.domains)
        floor = memory_floor(daemon.test_uri)
        print(f"resident memory, MB: {floor}")
        conn = Connection(daemon.test_uri, "floor").conn
        dom = conn.lookupByName("vm0001")
        nics = [f"tap1n{n}" for n in range(2)]
        calls: dict[str, Callable[[], Any]] = {
            "info": dom.info, "getCPUStats": lambda: dom.getCPUStats(True),
            "vcpus": dom.vcpus, "blockStats vda": lambda: dom.blockStats("vda"),
            "blockStats sdb": lambda: dom.blockStats("sdb"),
            "interfaceStats n0": lambda: dom.interfaceStats(nics[0]),
            "interfaceStats n1": lambda: dom.interfaceStats(nics[1]),
            "controlInfo": dom.controlInfo, "memoryStats": dom.memoryStats,
            "diskErrors": lambda: dom.diskErrors(0), "state": dom.state}
        costs = per_call(calls, args.repeat)
        for name, cost in costs.items():
            print(f"{name}: {cost:.0f} us of client CPU per call")
        started = time.perf_counter()
        before = cpu_s()
        for _ in range(5):
            conn.domainListGetStats(conn.listAllDomains(0), libvirt.VIR_DOMAIN_STATS_STATE, 0)
        print(f"list and bulk state of {args.domains + 1} domains: "
              f"{(cpu_s() - before) / 5 * 1e3:.1f} ms CPU, "
              f"{(time.perf_counter() - started) / 5 * 1e3:.1f} ms wall")
        per_domain = sum(costs[name] for name in PER_CYCLE)
        steps = dict(step.split("=") for step in floor.split(";"))
        libvirt_mb = float(steps["import libvirt"]) - float(steps["interpreter"])
        print(f"rss_floor_mb={steps['a connection, domains listed']} "
              f"libvirt_import_mb={libvirt_mb:.1f} "
              f"call_cpu_us_per_domain={per_domain:.0f}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
