"""What polling costs: CPU per domain per cycle, time to the first full snapshot, RSS,
and the AgentX walk rate of the domain table, against a private (remote) libvirtd.

The libvirtd runs in its own process (``agentx_virt.libvirtd``), so its CPU and
memory are not counted as ours, as on a real host.  Test-driver domains are
defined on its shared ``test:///default`` driver; QEMU/TCG domains (two, or
``--qemu-domains N``: with few, the fixed cost of a cycle weighs on each) are
started on its QEMU driver.  Needs root (the private libvirtd).

    python bench/poll_cost.py --domains 1000 --walk-domains 1000 5000
"""

from __future__ import annotations

import argparse
import compileall
import logging
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import libvirt

import agentx_virt
from agentx_virt.app.config import Config
from agentx_virt.app.daemon import Agent
from agentx_virt.collector.calls import SLOW_REFRESH_CYCLES
from agentx_virt.collector.connection import Connection
from agentx_virt.collector.groups import COMPLETED
from agentx_virt.collector.poller import LAYOUT_REFRESH_CYCLES, Poller
from agentx_virt.collector.sample import NOWAIT, bulk_groups
from agentx_virt.demo.agent_thread import AgentThread
from agentx_virt.demo.node import node_xml
from agentx_virt.demo.snmpd import PrivateSnmpd, snmp_command, snmp_tool, stop_process, tool_env
from agentx_virt.mib.build import build_tables
from agentx_virt.mib.model import shipped_mib
from agentx_virt.mib.views import DEFAULT_MIBS, VIEWS
from agentx_virt.model.snapshot import Snapshot
from agentx_virt.oid import format_oid
from agentx_virt.snmp.domain_index import DomainIndexRegistry

# The private peers live with the tests (tests/support), beside this directory.
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from tests.support.libvirtd import PrivateLibvirtd
from tests.support.testdriver import define_domain

DOMAIN_TABLE = format_oid(shipped_mib().object("lvxDomainTable").oid)


def define_test_domains(conn: libvirt.virConnect, count: int, first: int = 1) -> None:
    """Define ``count`` test-driver domains on the daemon; 8 in 10 are started.

    ``conn`` must stay open for the whole run: the daemon forgets test:///default's
    domains when its last client disconnects.
    """
    for number in range(first, first + count):
        define_domain(conn, number, start=number % 10 < 8)


def vm_rss_mib(pid: object = "self") -> tuple[float, float]:
    """(current, peak) resident set size of a process, MiB."""
    fields = dict(line.split(":", 1) for line in Path(f"/proc/{pid}/status").read_text()
                  .splitlines() if ":" in line)
    return (int(fields["VmRSS"].split()[0]) / 1024, int(fields["VmHWM"].split()[0]) / 1024)


def daemon_rss(uri: str, domains: int, workdir: Path, cycles: int,
               workers: int, mibs: tuple[str, ...] = DEFAULT_MIBS) -> tuple[float, float, float]:
    """RSS of ``agentx-virt run`` as a user starts it (its own process, snmpd as master),
    after it serves every domain and then ``cycles`` more polls at a 2 s interval, with a
    walk of the domain table during each: (MiB after the first walk, at the end, peak).

    The package's bytecode is compiled first, as ``pip install`` or a distribution
    package does: compiling the sources at startup (e.g. with PYTHONDONTWRITEBYTECODE
    set in a source tree) leaves about 1 MiB more resident."""
    compileall.compile_dir(str(Path(agentx_virt.__file__).parent), quiet=1)
    config = workdir / "agentx-virt.toml"
    workdir.mkdir(parents=True, exist_ok=True)
    served = ", ".join(f'"{name}"' for name in mibs)
    config.write_text(f"[poll]\nworkers = {workers}\n[mibs]\nserve = [{served}]\n")
    with PrivateSnmpd(workdir) as snmpd:
        daemon = subprocess.Popen(
            [sys.executable, "-m", "agentx_virt.app.cli", "run", "--config", str(config), "--uri",
             uri, "--agentx", snmpd.agentx_address, "--interval", "2", "--state-dir",
             str(workdir / "state"), "--log-level", "error"], stdin=subprocess.DEVNULL)
        try:
            count = format_oid(shipped_mib().object("lvxDomainCount").oid) + ".0"
            deadline = time.monotonic() + 120
            while snmp_tool("snmpget", snmpd.agent, count,
                            options=["-Oqv"]).stdout.strip() != str(domains):
                if daemon.poll() is not None or time.monotonic() > deadline:
                    raise SystemExit(f"agentx-virt run did not serve {domains} domains within "
                                     f"120 s (exit code {daemon.poll()})")
                time.sleep(0.5)
            first = 0.0
            for cycle in range(cycles + 1):
                walk = snmp_tool("snmpbulkwalk", snmpd.agent, DOMAIN_TABLE, options=["-Cr25"],
                                 request_timeout=10)
                if walk.returncode != 0:
                    raise SystemExit(f"the walk during the RSS run failed: {walk.stderr}")
                if cycle == 0:
                    first = vm_rss_mib(daemon.pid)[0]
                time.sleep(2)
            now, peak = vm_rss_mib(daemon.pid)
        finally:
            stop_process(daemon, 20)
    return first, now, peak


def cpu_per_domain_cycle(uri: str, cycles: int, workers: int,
                         mibs: tuple[str, ...] = DEFAULT_MIBS
                         ) -> tuple[float, float, float, int]:
    """(ms of CPU per domain per cycle for the partitioner, for polling, for building the
    table of ``mibs``, as the agent serving them builds it; domains).

    The agent runs the partitioner once per interval, as it runs every reader: the
    domain list, and the XML of the domains an event named or that were read
    LAYOUT_REFRESH_CYCLES cycles ago.  Its cost is the mean over LAYOUT_REFRESH_CYCLES
    cycles, which re-read every domain's XML once (no events here)."""
    config = Config(uri=uri, interval_s=600, domain_timeout_s=300, workers=workers)
    snapshots: list[Snapshot] = []
    poller = Poller(config, snapshots.append)
    poller.partition_once()
    domains = sum(len(poller._assignment(r.number)()) for r in poller.readers)
    started = time.process_time()
    for _ in range(LAYOUT_REFRESH_CYCLES):
        poller.partition_once()
    partition_cpu = (time.process_time() - started) / LAYOUT_REFRESH_CYCLES * cycles
    for reader in poller.readers:           # a first cycle: lookups, CPU time baseline
        reader.poll_once()
    poll_cpu = build_cpu = 0.0
    views = [(VIEWS[name], VIEWS[name].load()) for name in mibs]
    # As the SNMP side assigns them.
    indexes = DomainIndexRegistry().index_domains(snapshots[-1].domains, time.time())
    for _ in range(cycles):
        started = time.process_time()
        for reader in poller.readers:
            reader.poll_once()
        poll_cpu += time.process_time() - started
        started = time.process_time()
        build_tables(snapshots[-1], indexes, views)
        build_cpu += time.process_time() - started
    poller.stop(1)
    per = 1000 / (cycles * max(domains, 1))
    return partition_cpu * per, poll_cpu * per, build_cpu * per, domains


def libvirt_calls_alone(uri: str, cycles: int) -> float:
    """ms of CPU per domain per cycle for the libvirt calls no cycle can do without, made
    back to back on one connection with nothing else done: the domain list, one bulk
    statistics call for every domain, each domain's current job, and its completed job
    every SLOW_REFRESH_CYCLES cycles.  What the agent spends above this is its own."""
    conn = Connection(uri, "bench")          # opened as the agent opens its connections
    groups = bulk_groups(Config(uri=uri).wants)   # the default selectors

    def cycle(number: int) -> int:
        doms = conn.conn.listAllDomains(0)
        conn.conn.domainListGetStats(doms, groups, NOWAIT)
        for index, dom in enumerate(doms):
            dom.jobStats()
            if (index + number) % SLOW_REFRESH_CYCLES == 0:
                dom.jobStats(COMPLETED)
        return len(doms)

    try:
        domains = cycle(0)
        started = time.process_time()
        for number in range(1, cycles + 1):
            cycle(number)
        return (time.process_time() - started) * 1000 / (cycles * max(domains, 1))
    finally:
        conn.close()


def cpu_line(figures: tuple[float, float, float, int]) -> str:
    partition, poll, build, _ = figures
    return (f"{partition + poll + build:.3f} ms CPU per domain per cycle (partitioner "
            f"{partition:.3f}, readers {poll:.3f}, table build {build:.3f})")


def first_snapshot_and_walk(uri: str, domains: int, workdir: Path) -> tuple[float, int, float]:
    """Seconds from start to every domain polled and served; walk of lvxDomainTable."""
    with PrivateSnmpd(workdir) as snmpd:
        agent = Agent(Config(uri=uri, agentx=snmpd.agentx_address, interval_s=30,
                             domain_timeout_s=10, state_dir=workdir / "state"))
        started = time.monotonic()
        running = AgentThread(agent).start()
        if not running.wait_ready(120):
            raise SystemExit("the agent did not poll every domain and register within 120 s")
        first_s = time.monotonic() - started
        out = workdir / "walk.out"
        with open(out, "wb") as sink:
            walk_started = time.perf_counter()
            subprocess.run(snmp_command("snmpbulkwalk", snmpd.agent, DOMAIN_TABLE,
                                        options=["-Cr10"], request_timeout=10),
                           stdout=sink, env=tool_env(), check=True, stdin=subprocess.DEVNULL)
            walk_s = time.perf_counter() - walk_started
        values = sum(1 for line in out.read_bytes().splitlines() if b" = " in line)
        running.stop()
    if values < domains:
        raise SystemExit(f"the walk returned {values} values for {domains} domains")
    return first_s, values, values / walk_s


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--domains", type=int, default=1000)
    parser.add_argument("--cycles", type=int, default=5)
    parser.add_argument("--rss-cycles", type=int, default=40,
                        help="polls (2 s apart, each with a walk) before the RSS is read; "
                             "measured here, it grew by 0.4 MiB from 10 to 40 polls and no "
                             "more up to 150")
    parser.add_argument("--workers", type=int, default=Config.workers,
                        help="worker threads per reader (default: the config default)")
    parser.add_argument("--walk-domains", type=int, nargs="*", default=[1000, 5000])
    parser.add_argument("--qemu-domains", type=int, default=2,
                        help="QEMU/TCG domains to start (64 MiB each)")
    parser.add_argument("--mibs", default=",".join(DEFAULT_MIBS),
                        help="the MIBs served and built, comma-separated (default: the "
                             f"agent's, {','.join(DEFAULT_MIBS)})")
    args = parser.parse_args(argv)
    mibs = tuple(name.strip() for name in args.mibs.split(","))
    unknown = [name for name in mibs if name not in VIEWS]
    if unknown:
        parser.error(f"unknown MIB(s) {unknown}; known: {', '.join(VIEWS)}")
    logging.basicConfig(level=logging.ERROR)
    print(f"MIBs served and built: {', '.join(mibs)}")
    libvirt.registerErrorHandler(lambda _c, _e: None, None)
    work = Path(tempfile.mkdtemp(prefix="axv-poll-"))
    with PrivateLibvirtd(work / "libvirtd") as daemon:
        test_uri = daemon.test_uri
        holder = libvirt.open(test_uri)
        define_test_domains(holder, args.domains)
        for number in range(1, args.qemu_domains + 1):
            daemon.start_domain(f"q{number}", number)
        remote = cpu_per_domain_cycle(test_uri, args.cycles, args.workers, mibs)
        counted = remote[3]
        print(f"remote test driver, {counted} domains (1 built in): {cpu_line(remote)}")
        qemu = cpu_per_domain_cycle(daemon.uri, args.cycles, args.workers, mibs)
        print(f"QEMU/TCG, {qemu[3]} domains: {cpu_line(qemu)}")
        print(f"QEMU/TCG, {qemu[3]} domains: {libvirt_calls_alone(daemon.uri, args.cycles):.3f} "
              "ms CPU per domain per cycle for the libvirt calls alone (domain list, one bulk "
              "call, each domain's jobs)")
        first_s, values, rate = first_snapshot_and_walk(test_uri, counted, work / "walk1")
        first_1000_s = first_s
        print(f"{counted} domains: first full snapshot served after {first_s:.2f} s; "
              f"lvxDomainTable walk {values} values at {rate:.0f} values/s")
        rss_first, rss_end, peak = daemon_rss(test_uri, counted, work / "rss", args.rss_cycles,
                                              args.workers, mibs)
        print(f"RSS of 'agentx-virt run' serving {counted} domains (libvirtd is another "
              f"process): {rss_first:.0f} MiB after the first walk, {rss_end:.0f} MiB after "
              f"{args.rss_cycles} more polls ({rss_end * 1.048576:.1f} MB), peak {peak:.0f} MiB")
        walked = args.domains
        for target in sorted(args.walk_domains):
            if target > walked:     # (plus the driver's built-in domain)
                define_test_domains(holder, target - walked, first=walked + 1)
                walked = target
            first_s, values, rate = first_snapshot_and_walk(test_uri, walked,
                                                            work / f"walk{target}")
            print(f"{walked} domains: first full snapshot {first_s:.2f} s; "
                  f"lvxDomainTable walk {values} values at {rate:.0f} values/s")
    # Last: the in-process test driver keeps its domains in this process's memory.
    node = work / "node.xml"
    node.write_text(node_xml(args.domains))
    local = cpu_per_domain_cycle(f"test://{node}", args.cycles, args.workers, mibs)
    print(f"in-process test driver, {local[3]} domains (libvirt's own work included): "
          f"{cpu_line(local)}")
    print(f"cpu_ms_per_domain_cycle_local={sum(local[:3]):.3f} "
          f"cpu_ms_per_domain_cycle_remote={sum(remote[:3]):.3f} "
          f"cpu_ms_per_domain_cycle_qemu={sum(qemu[:3]):.3f} "
          f"first_snapshot_s={first_1000_s:.2f} rss_mib={peak:.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
