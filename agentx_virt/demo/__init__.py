"""``agentx-virt demo``: the whole path on this machine, with nothing to set up.

It writes a libvirt test-driver node with generated domains, starts a private
snmpd on loopback, runs the agent against both, walks the domain table through
snmpd with ``snmpbulkwalk`` and prints it by column name, then stops everything.
"""

from __future__ import annotations

import logging
import shutil
import signal
import tempfile
from pathlib import Path
from typing import Optional

from agentx_virt.app.config import Config
from agentx_virt.app.daemon import Agent
from agentx_virt.demo.agent_thread import AgentThread
from agentx_virt.demo.node import node_xml
from agentx_virt.demo.snmpd import PrivateSnmpd, snmp_tool
from agentx_virt.mib.model import shipped_mib
from agentx_virt.oid import format_oid, parse_oid

log = logging.getLogger(__name__)

SHOWN_COLUMNS = ("lvxDomainName", "lvxDomainState", "lvxDomainStateReasonText",
                 "lvxDomainSeverity", "lvxDomainVcpusCurrent", "lvxDomainMemoryCurrentKiB",
                 "lvxDomainReader", "lvxDomainPartitionTag", "lvxDomainPollStatus")


def walk_domain_table(agent: str) -> tuple[list[str], dict[int, dict[str, str]]]:
    """snmpbulkwalk lvxDomainTable through snmpd; rows by index, cells by column name."""
    mib = shipped_mib()
    entry = mib.object("lvxDomainEntry").oid
    columns = {c.oid[-1]: c for c in mib.columns("lvxDomainEntry")}
    result = snmp_tool("snmpbulkwalk", agent, format_oid(entry), options=["-Oqe"])
    if result.returncode != 0:
        raise RuntimeError(f"snmpbulkwalk failed: {result.stderr.strip()}")
    rows: dict[int, dict[str, str]] = {}
    for line in result.stdout.splitlines():
        oid_text, _, value = line.partition(" ")
        oid = parse_oid(oid_text)
        column, index = columns[oid[len(entry)]], oid[len(entry) + 1]
        value = value.strip('"')
        if column.syntax is not None and column.syntax.enum and value.lstrip("-").isdigit():
            by_number = {number: label for label, number in column.syntax.enum.items()}
            value = by_number.get(int(value), value)
        rows.setdefault(index, {})[column.name] = value
    return [columns[k].name for k in sorted(columns)], rows


class _Stopped(Exception):
    """SIGTERM (or SIGINT) asked the demo to stop."""


def _stop(signum: int, _frame: object) -> None:
    raise _Stopped(signal.Signals(signum).name)


def run_demo(domains: int = 12, interval: float = 2.0, workdir: Optional[Path] = None) -> int:
    """Run the demo; on SIGINT or SIGTERM the agent, the private snmpd and the temp
    directory are stopped and removed as at the end (exit 130 or 143)."""
    own_dir = workdir is None
    work = workdir or Path(tempfile.mkdtemp(prefix="agentx-virt-demo-"))
    previous = {s: signal.signal(s, _stop) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        return _demo(domains, interval, work)
    except _Stopped as stopped:
        print(f"demo: {stopped}: stopping the agent and the private snmpd", flush=True)
        return 128 + signal.Signals[str(stopped)].value
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
        if own_dir:
            shutil.rmtree(work, ignore_errors=True)


def _demo(domains: int, interval: float, work: Path) -> int:
    node = work / "node.xml"
    node.write_text(node_xml(domains, tags=2))
    print(f"demo: {domains} test-driver domains in {node}", flush=True)
    running: Optional[AgentThread] = None
    try:
        with PrivateSnmpd(work / "snmpd") as snmpd:
            print(f"demo: private snmpd on {snmpd.agent}, AgentX master "
                  f"{snmpd.agentx_address}", flush=True)
            config = Config(uri=f"test://{node}", agentx=snmpd.agentx_address,
                            interval_s=interval, domain_timeout_s=interval / 2, instances=2,
                            state_dir=work / "state")
            running = AgentThread(Agent(config)).start()
            if not running.wait_ready(30):
                print("demo: the agent did not poll every domain and register with snmpd "
                      "within 30 s")
                running.stop()
                return 1
            _columns, rows = walk_domain_table(snmpd.agent)
            print(f"demo: snmpbulkwalk of lvxDomainTable through snmpd: {len(rows)} rows\n")
            widths = {c: max(len(c) - 9, *(len(r.get(c, "")) for r in rows.values()))
                      for c in SHOWN_COLUMNS}
            print("index  " + "  ".join(c[9:].ljust(widths[c]) for c in SHOWN_COLUMNS))
            for index in sorted(rows):
                print(f"{index:>5}  " + "  ".join(rows[index].get(c, "").ljust(widths[c])
                                                 for c in SHOWN_COLUMNS))
            stopped = running.stop()
            running = None
            code = 1 if stopped is None else stopped
            print(f"\ndemo: agent stopped (exit {code}); stopping snmpd")
            return code if len(rows) == domains else 1
    finally:
        if running is not None:       # interrupted: stop it before snmpd goes
            running.stop()
