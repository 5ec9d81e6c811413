"""How soon the subagent serves again after snmpd comes back.

Starts a private snmpd and a subagent, then several times stops snmpd, leaves it
down for a while, starts it again and times from the moment the new snmpd process is spawned to
the first ``snmpget`` that returns the subagent's value (snmpd's own start-up
time is included, so this is an upper bound on the subagent's part).

The last line is ``reconnect_s_max=<s> reconnect_s_median=<s>``.

    python bench/agentx_reconnect.py --outages 0.5 2 5
"""

from __future__ import annotations

import argparse
import logging
import statistics
import sys
import tempfile
import time
from pathlib import Path

from agentx_virt.agentx.address import parse_address
from agentx_virt.agentx.constants import ValueType
from agentx_virt.agentx.session import AgentXSession
from agentx_virt.agentx.session_config import SessionConfig
from agentx_virt.agentx.session_thread import SessionThread
from agentx_virt.agentx.store import OidTable, ServedStore
from agentx_virt.demo.snmpd import PrivateSnmpd, snmp_tool
from agentx_virt.oid import OID, format_oid

ROOT: OID = (1, 3, 6, 1, 4, 1, 36957, 3, 99)
PROBE: OID = (*ROOT, 1, 0)


def served(agent: str) -> bool:
    result = snmp_tool("snmpget", agent, format_oid(PROBE), request_timeout=0.2)
    return result.returncode == 0 and "INTEGER: 1" in result.stdout


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--outages", type=float, nargs="+", default=[0.5, 2.0, 5.0],
                        help="seconds snmpd stays down, one restart each")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.ERROR)
    workdir = Path(tempfile.mkdtemp(prefix="axv-reconnect-"))
    results: list[float] = []
    with PrivateSnmpd(workdir / "snmpd") as snmpd:
        table = OidTable([(PROBE, ValueType.INTEGER, 1)])
        session = AgentXSession(SessionConfig(parse_address(snmpd.agentx_address), (ROOT,)),
                                ServedStore(table))
        running = SessionThread(session).start()
        if not session.serving.wait(10):
            raise SystemExit("the subagent did not register within 10 s")
        for outage in args.outages:
            snmpd.stop()
            time.sleep(outage)
            snmpd.start()                      # returns once snmpd answers SNMP
            back = snmpd.spawned_at
            ready = time.perf_counter() - back
            while not served(snmpd.agent):
                if time.perf_counter() - back > 30:
                    raise SystemExit(f"not served 30 s after snmpd came back ({outage} s outage)")
                time.sleep(0.02)
            took = time.perf_counter() - back
            results.append(took)
            print(f"outage {outage:.1f} s: snmpd answered {ready:.2f} s after spawn; "
                  f"subagent values served {took:.2f} s after spawn")
        running.stop()
    print(f"reconnect_s_max={max(results):.2f} "
          f"reconnect_s_median={statistics.median(results):.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
