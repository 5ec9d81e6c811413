"""Poll health under load: do healthy domains stay healthy while walks run?

A private libvirtd serves DOMAINS test-driver domains (root needed), or with
``--in-process`` the agent opens them from a node file (``test:///PATH``: libvirt's
test driver inside the agent's own process).  ``agentx-virt run`` polls them every
INTERVAL seconds behind a private snmpd whose trap sink is a private snmptrapd
(TCP), while ``snmpbulkwalk`` walks lvxDomainTable (about 30 values per domain)
every WALK_EVERY seconds, for SECONDS.  No domain is hung, so every
lvxDomainPollStalled is false, and so is every timedOut(2) cell the walks see.
Prints, per run, ``stalled=.. recovered=.. timed_out_cells=.. skipped_cells=..
walks=.. warnings=..`` (warnings: WARNING lines in the agent's log).

    python bench/poll_health.py --domains 500 --interval 1 --walk-every 5 --seconds 120
"""

from __future__ import annotations

import argparse
import contextlib
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import libvirt

from agentx_virt.demo.node import node_xml
from agentx_virt.demo.snmpd import PrivateSnmpd, snmp_tool
from agentx_virt.mib.model import shipped_mib
from agentx_virt.oid import format_oid

# The private peers live with the tests (tests/support), beside this directory.
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from tests.support.libvirtd import PrivateLibvirtd
from tests.support.snmptrapd import PrivateSnmptrapd
from tests.support.testdriver import define_domain

MIB = shipped_mib()


def count_traps(trapd: PrivateSnmptrapd, name: str) -> int:
    oid = format_oid(MIB.notification(name).oid)
    return sum(1 for line in trapd.traps() if f"OID: {oid}\t" in line or
               line.endswith(f"OID: {oid}"))


def run(domains: int, interval: float, walk_every: float, seconds: float, work: Path,
        in_process: bool, walk: str) -> str:
    with contextlib.ExitStack() as stack:
        trapd = stack.enter_context(PrivateSnmptrapd(work / "trapd", transport="tcp"))
        snmpd = stack.enter_context(PrivateSnmpd(work / "snmpd", trap_port=trapd.port,
                                                 trap_transport="tcp"))
        if in_process:
            node = work / "node.xml"
            node.write_text(node_xml(domains))
            uri = f"test://{node}"
        else:
            daemon = stack.enter_context(PrivateLibvirtd(work / "libvirtd"))
            uri = daemon.test_uri
            conn = libvirt.open(uri)      # holds the test driver's domains
            stack.callback(conn.close)
            for number in range(1, domains + 1):
                define_domain(conn, number)
        return _measure(uri, snmpd, trapd, interval, walk_every, seconds, work, walk)


def _measure(uri: str, snmpd: PrivateSnmpd, trapd: PrivateSnmptrapd, interval: float,
             walk_every: float, seconds: float, work: Path, walk: str) -> str:
    log = work / "agent.log"
    with open(log, "wb") as log_file:
        agent = subprocess.Popen(
            [sys.executable, "-m", "agentx_virt", "run", "--uri", uri,
             "--agentx", snmpd.agentx_address, "--interval", str(interval),
             "--state-dir", str(work / "state"), "--log-level", "WARNING"],
            stdin=subprocess.DEVNULL, stdout=log_file, stderr=log_file)
    table = format_oid(MIB.root if walk == "mib" else MIB.object("lvxDomainTable").oid)
    status = format_oid(MIB.object("lvxDomainPollStatus").oid) + "."
    timed_out = skipped = walks = 0
    try:
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            walk_at = time.monotonic() + walk_every
            lines = snmp_tool("snmpbulkwalk", snmpd.agent, table, options=["-Oq"],
                              request_timeout=10).stdout.splitlines()
            cells = [line.split()[-1] for line in lines if line.startswith(status)]
            walks += 1
            timed_out += cells.count("2")
            skipped += cells.count("5")
            time.sleep(max(0.0, walk_at - time.monotonic()))
    finally:
        agent.terminate()
        agent.wait(30)
    warned = [line.split(" WARNING ", 1)[1] for line in log.read_text(errors="replace")
              .splitlines() if " WARNING " in line]
    warnings = len(warned)
    for line in sorted(set(w[:120] for w in warned))[:5]:
        print(f"  warning: {line}", file=sys.stderr)
    return (f"stalled={count_traps(trapd, 'lvxDomainPollStalled')} "
            f"recovered={count_traps(trapd, 'lvxDomainPollRecovered')} "
            f"timed_out_cells={timed_out} skipped_cells={skipped} walks={walks} "
            f"warnings={warnings}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--domains", type=int, default=500, help="test-driver domains (500)")
    parser.add_argument("--interval", type=float, default=1.0, help="poll interval, s (1)")
    parser.add_argument("--walk-every", type=float, default=5.0, help="s between walks (5)")
    parser.add_argument("--seconds", type=float, default=120.0, help="length of a run (120)")
    parser.add_argument("--runs", type=int, default=1, help="runs, one line each (1)")
    parser.add_argument("--walk", choices=("table", "mib"), default="table",
                        help="walk lvxDomainTable, or all of LIBVIRT-EXT-MIB (default: table)")
    parser.add_argument("--in-process", action="store_true",
                        help="the test driver inside the agent (test:///node.xml), no libvirtd")
    args = parser.parse_args()
    for _ in range(args.runs):
        with tempfile.TemporaryDirectory(prefix="axh-") as work:
            print(run(args.domains, args.interval, args.walk_every, args.seconds, Path(work),
                      args.in_process, args.walk), flush=True)


if __name__ == "__main__":
    main()
