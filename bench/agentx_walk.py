"""Walk rate through snmpd of a synthetic table served by agentx-virt's AgentX core.

Starts a private snmpd (AgentX master on a unix socket), serves ROWS x COLUMNS
values through ``AgentXSession``, times ``snmpbulkwalk`` over the table, then
walks snmpd's own in-process tree (mib-2) in the same run for reference.

The last line is ``values_per_s=<n> ratio_to_snmpd=<r>``.

    python bench/agentx_walk.py --rows 10000 --columns 10
"""

from __future__ import annotations

import argparse
import logging
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from agentx_virt.agentx.address import parse_address
from agentx_virt.agentx.constants import ValueType
from agentx_virt.agentx.pdu import Value
from agentx_virt.agentx.session import AgentXSession
from agentx_virt.agentx.session_config import SessionConfig
from agentx_virt.agentx.session_thread import SessionThread
from agentx_virt.agentx.store import OidTable, ServedStore
from agentx_virt.demo.snmpd import PrivateSnmpd, snmp_command, tool_env
from agentx_virt.oid import OID, format_oid

ROOT: OID = (1, 3, 6, 1, 4, 1, 36957, 3, 99)  # a private arc below the module root
ENTRY: OID = ROOT + (1, 1)
REFERENCE_SUBTREE = ".1.3.6.1.2.1"  # mib-2 served by snmpd itself


def synthetic_table(rows: int, columns: int) -> OidTable:
    """ROWS x COLUMNS values cycling through the types a real table uses."""
    kinds: list[tuple[ValueType, object]] = [
        (ValueType.INTEGER, -5),
        (ValueType.OCTET_STRING, b"domain-name-0001"),
        (ValueType.COUNTER64, 2**40),
        (ValueType.GAUGE32, 12345),
        (ValueType.COUNTER32, 4000000000),
        (ValueType.TIME_TICKS, 360000),
    ]
    entries: list[tuple[OID, ValueType, Value]] = []
    for column in range(1, columns + 1):
        kind, base = kinds[(column - 1) % len(kinds)]
        for row in range(1, rows + 1):
            value = base if not isinstance(base, int) or kind is ValueType.INTEGER else base + row
            entries.append((ENTRY + (column, row), kind, value))  # type: ignore[arg-type]
    return OidTable(entries, objects=[ENTRY + (c,) for c in range(1, columns + 1)])


def thread_cpu_s(native_id: int) -> tuple[float, float]:
    """(user, system) CPU seconds a thread of this process has used, from /proc."""
    fields = Path(f"/proc/self/task/{native_id}/stat").read_text().rsplit(")", 1)[1].split()
    ticks = os.sysconf("SC_CLK_TCK")
    return int(fields[11]) / ticks, int(fields[12]) / ticks  # utime, stime


def timed_walk(agent: str, subtree: str, repetitions: int, workdir: Path) -> tuple[int, float]:
    """Time one snmpbulkwalk; its output goes to a file so that this process does no
    work (and takes no GIL) while the session thread serves."""
    output = workdir / "walk.out"
    command = snmp_command("snmpbulkwalk", agent, subtree, options=[f"-Cr{repetitions}"],
                           request_timeout=5)
    with open(output, "wb") as sink:
        started = time.perf_counter()
        completed = subprocess.run(command, stdout=sink, stderr=subprocess.PIPE,
                                   env=tool_env(), stdin=subprocess.DEVNULL, timeout=3600)
        elapsed = time.perf_counter() - started
    if completed.returncode != 0:
        raise SystemExit(f"snmpbulkwalk of {subtree} failed: {completed.stderr.decode()}")
    with open(output, "rb") as walked:
        values = sum(1 for line in walked if b" = " in line)
    return values, elapsed


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=10000)
    parser.add_argument("--columns", type=int, default=10)
    parser.add_argument("--runs", type=int, default=3,
                        help="walks of the table; the median rate is reported")
    parser.add_argument("--repetitions", type=int, default=10,
                        help="snmpbulkwalk max-repetitions (-Cr); default 10, its own default")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")

    built = time.perf_counter()
    table = synthetic_table(args.rows, args.columns)
    build_s = time.perf_counter() - built
    workdir = Path(tempfile.mkdtemp(prefix="axv-bench-"))
    with PrivateSnmpd(workdir / "snmpd") as snmpd:
        address = parse_address(snmpd.agentx_address)
        session = AgentXSession(SessionConfig(address, (ROOT,)), ServedStore(table))
        running = SessionThread(session).start()
        if not session.serving.wait(10):
            raise SystemExit("the subagent did not register with snmpd within 10 s")
        assert running.thread.native_id is not None
        rates: list[float] = []
        user_s = system_s = 0.0
        for _ in range(args.runs):
            user_before, system_before = thread_cpu_s(running.thread.native_id)
            values, elapsed = timed_walk(snmpd.agent, format_oid(ROOT), args.repetitions,
                                         workdir)
            user_after, system_after = thread_cpu_s(running.thread.native_id)
            user_s += user_after - user_before
            system_s += system_after - system_before
            if values != args.rows * args.columns:
                raise SystemExit(f"walk returned {values} values, "
                                 f"expected {args.rows * args.columns}")
            rates.append(values / elapsed)
            print(f"walk {len(rates)}: {values} values in {elapsed:.2f} s "
                  f"({rates[-1]:.0f} values/s)")
        ref_values, ref_elapsed = timed_walk(snmpd.agent, REFERENCE_SUBTREE, args.repetitions,
                                             workdir)
        running.stop()
    walked = args.rows * args.columns * args.runs
    rate = statistics.median(rates)
    ref_rate = ref_values / ref_elapsed
    rss_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"table: {args.rows} rows x {args.columns} columns = {args.rows * args.columns} "
          f"values (built in {build_s:.2f} s); snmpbulkwalk -Cr{args.repetitions}")
    print(f"agentx-virt: median {rate:.0f} values/s over {args.runs} walk(s) "
          f"(min {min(rates):.0f}, max {max(rates):.0f}); session thread CPU "
          f"{(user_s + system_s) / walked * 1e6:.1f} us/value "
          f"(user {user_s / walked * 1e6:.1f}, system {system_s / walked * 1e6:.1f}); "
          f"peak RSS {rss_mib:.0f} MiB")
    print(f"snmpd own mib-2: {ref_values} values in {ref_elapsed:.2f} s "
          f"({ref_rate:.0f} values/s)")
    print(f"values_per_s={rate:.0f} ratio_to_snmpd={rate / ref_rate:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
