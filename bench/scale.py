"""The agent at scale: N test-driver domains on a private libvirtd, polled every S seconds
while its whole subtree is walked through a private snmpd.

``agentx-virt run`` runs as its own process, as a user starts it (libvirtd and snmpd are
other processes).  The bench measures, in one run:

* ``start_to_full_s``: from starting the agent to every domain served with data from a
  poll (``lvxDomainDataAgeSeconds`` present for each, walked every 0.2 s); ``none`` if
  that did not happen within ``--start-timeout`` (the walks are then made anyway);
* ``fresh``: ``lvxLastPollFresh`` after the walks, the domains whose row is from the
  last poll;
* ``complete``: the fewest values any of the walks returned, against the values a
  full table holds (built in-process from a poll with no deadline, rates included);
* ``walk_v_per_s``: the median rate of three ``snmpbulkwalk`` of the agent's subtrees
  (enterprise 36957 and VM-MIB), taken while the agent polls, and ``ratio_to_snmpd``:
  that against snmpd's own tables (IF-MIB, IP-MIB, HOST-RESOURCES-MIB) in the same run;
* ``rss_mb``: the agent's peak resident memory (VmHWM), MB;
* ``cpu_s_per_cycle``: the agent's CPU (user + system) per poll over three quiet
  intervals after the walks.

The last line is ``domains=N interval=S complete=<served>/<expected> walk_v_per_s=<median>
ratio_to_snmpd=<r> rss_mb=<peak> cpu_s_per_cycle=<c> start_to_full_s=<t>
fresh=<n>/<domains>``.  Needs root
(the private libvirtd).

    python bench/scale.py --domains 1000 --interval 5
"""

from __future__ import annotations

import argparse
import logging
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import libvirt

from agentx_virt.app.config import Config
from agentx_virt.collector.poller import Poller
from agentx_virt.demo.snmpd import PrivateSnmpd, snmp_command, snmp_tool, stop_process, tool_env
from agentx_virt.mib.build import build_tables
from agentx_virt.mib.model import shipped_mib
from agentx_virt.mib.views import DEFAULT_MIBS, VIEWS
from agentx_virt.model.snapshot import Snapshot
from agentx_virt.oid import format_oid
from agentx_virt.snmp.domain_index import DomainIndexRegistry

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from tests.support.libvirtd import PrivateLibvirtd
from tests.support.testdriver import define_domains

OURS = (".1.3.6.1.4.1.36957", ".1.3.6.1.2.1.236")
SNMPD_OWN = (".1.3.6.1.2.1.2", ".1.3.6.1.2.1.4", ".1.3.6.1.2.1.25")
DATA_AGE = format_oid(shipped_mib().object("lvxDomainDataAgeSeconds").oid)
# lvxLastPollFresh is lvxAgent 17 (by number: the bench also runs earlier commits).
FRESH = format_oid(shipped_mib().object("lvxAgent").oid) + ".17.0"
_HZ = os.sysconf("SC_CLK_TCK")


def expected_values(uri: str, mibs: tuple[str, ...]) -> int:
    """Values in the full table of ``mibs`` for ``uri``'s domains: two polls with no
    deadline (the second gives the rates), built as the agent builds it."""
    snapshots: list[Snapshot] = []
    poller = Poller(Config(uri=uri, interval_s=600, domain_timeout_s=300), snapshots.append)
    poller.partition_once()
    for _ in range(2):
        for reader in poller.readers:
            reader.poll_once()
    poller.stop(1)
    snapshot = snapshots[-1]
    indexes = DomainIndexRegistry().index_domains(snapshot.domains, time.time())
    built = build_tables(snapshot, indexes, [(VIEWS[name], VIEWS[name].load()) for name in mibs])
    return len(built.table.varbinds)


def walk(agent: str, subtrees: tuple[str, ...], out: Path) -> tuple[int, float]:
    """(values, seconds) of one snmpbulkwalk of each subtree, back to back."""
    values, elapsed = 0, 0.0
    for subtree in subtrees:
        with open(out, "wb") as sink:
            started = time.perf_counter()
            done = subprocess.run(snmp_command("snmpbulkwalk", agent, subtree,
                                               options=["-Cr25"], request_timeout=30),
                                  stdout=sink, stderr=subprocess.PIPE, env=tool_env(),
                                  stdin=subprocess.DEVNULL, check=False)
            elapsed += time.perf_counter() - started
        if done.returncode != 0:
            raise SystemExit(f"the walk of {subtree} failed: {done.stderr.decode()[-300:]}")
        values += sum(1 for line in out.read_bytes().splitlines() if b" = " in line)
    return values, elapsed


def cpu_s(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / _HZ


def peak_rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024 / 1e6
    return 0.0


def all_polled(agent: str, domains: int) -> bool:
    result = snmp_tool("snmpbulkwalk", agent, DATA_AGE, options=["-Cr50", "-Oqv"],
                       request_timeout=10)
    return result.returncode == 0 and len(result.stdout.split()) >= domains


def run(uri: str, domains: int, interval: int, mibs: tuple[str, ...], workdir: Path,
        walks: int, start_timeout: float) -> str:
    expected = expected_values(uri, mibs)
    served = ", ".join(f'"{name}"' for name in mibs)
    config = workdir / "agentx-virt.toml"
    config.write_text(f"[mibs]\nserve = [{served}]\n")
    with PrivateSnmpd(workdir / "snmpd") as snmpd:
        started = time.monotonic()
        daemon = subprocess.Popen(
            [sys.executable, "-m", "agentx_virt", "run", "--config", str(config), "--uri", uri,
             "--agentx", snmpd.agentx_address, "--interval", str(interval), "--state-dir",
             str(workdir / "state"), "--log-level", "warning"], stdin=subprocess.DEVNULL,
            stderr=open(workdir / "agent.log", "wb"))
        try:
            start_to_full = "none"
            while time.monotonic() - started < start_timeout:
                if daemon.poll() is not None:
                    raise SystemExit(f"the agent exited with {daemon.poll()}")
                if all_polled(snmpd.agent, domains):
                    start_to_full = f"{time.monotonic() - started:.2f}"
                    break
                time.sleep(0.2)
            ours = [walk(snmpd.agent, OURS, workdir / "walk.out") for _ in range(walks)]
            reference = [walk(snmpd.agent, SNMPD_OWN, workdir / "own.out") for _ in range(walks)]
            before = cpu_s(daemon.pid)
            time.sleep(3 * interval)
            cpu_per_cycle = (cpu_s(daemon.pid) - before) / 3
            rss = peak_rss_mb(daemon.pid)
            fresh = snmp_tool("snmpget", snmpd.agent, FRESH, options=["-Oqv"]).stdout.strip()
        finally:
            stop_process(daemon, 30)
    rates = [values / seconds for values, seconds in ours]
    own = statistics.median(values / seconds for values, seconds in reference)
    print(f"walks of the agent's subtrees: {[v for v, _ in ours]} values, rates "
          f"{', '.join(f'{r:.0f}' for r in rates)} values/s; snmpd's own tables "
          f"{reference[0][0]} values at {own:.0f} values/s (median)")
    return (f"domains={domains} interval={interval} complete={min(v for v, _ in ours)}/"
            f"{expected} walk_v_per_s={statistics.median(rates):.0f} "
            f"ratio_to_snmpd={statistics.median(rates) / own:.2f} rss_mb={rss:.1f} "
            f"cpu_s_per_cycle={cpu_per_cycle:.2f} start_to_full_s={start_to_full} "
            f"fresh={fresh}/{domains}")


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--domains", type=int, default=1000)
    parser.add_argument("--interval", type=int, default=5)
    parser.add_argument("--walks", type=int, default=3)
    parser.add_argument("--start-timeout", type=float, default=300,
                        help="seconds to wait for every domain to be served with data")
    parser.add_argument("--mibs", default=",".join(DEFAULT_MIBS))
    args = parser.parse_args(argv)
    mibs = tuple(name.strip() for name in args.mibs.split(","))
    logging.basicConfig(level=logging.ERROR)
    libvirt.registerErrorHandler(lambda _c, _e: None, None)
    work = Path(tempfile.mkdtemp(prefix="axv-scale-"))
    with PrivateLibvirtd(work / "libvirtd") as daemon:
        holder = libvirt.open(daemon.test_uri)   # keeps test:///default's domains
        started = time.monotonic()
        define_domains(holder, args.domains)
        total = len(holder.listAllDomains(0))     # with the driver's built-in one
        print(f"{args.domains} domains defined and started in "
              f"{time.monotonic() - started:.1f} s ({total} with the built-in one)")
        print(run(daemon.test_uri, total, args.interval, mibs, work, args.walks,
                  args.start_timeout))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
