"""SIGHUP against ``agentx-virt run`` behind a real snmpd: a bad file is refused whole with
every problem logged, a good one applies its log level and names what waits for a
restart, a burst of signals is one reload, and the process and its AgentX session are the
same throughout."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from agentx_virt.demo.snmpd import PrivateSnmpd, snmp_tool
from agentx_virt.mib.model import shipped_mib
from agentx_virt.oid import format_oid

from .conftest import wait_for

pytestmark = pytest.mark.peers
DOMAIN_COUNT = format_oid(shipped_mib().object("lvxDomainCount").oid) + ".0"
GOOD = '[libvirt]\nuri = "test:///default"\n\n[agent]\nlog_level = "{level}"\n\n' \
       '[poll]\ninterval = {interval}\n'
BAD = '[libvirt]\nuri = "test:///default"\n\n[poll]\ninterval = -1\nworkrs = 2\n'


def test_sighup_reloads_without_a_restart_and_keeps_the_session(short_tmp: Path) -> None:
    config = short_tmp / "agentx-virt.toml"
    config.write_text(GOOD.format(level="INFO", interval=5))
    log_path = short_tmp / "agent.log"
    with PrivateSnmpd(short_tmp / "snmpd") as snmpd, open(log_path, "wb") as log_file:
        agent = subprocess.Popen(
            [sys.executable, "-m", "agentx_virt", "run", "--config", str(config),
             "--agentx", snmpd.agentx_address, "--state-dir", str(short_tmp / "state")],
            stdin=subprocess.DEVNULL, stdout=log_file, stderr=log_file)

        def log_text() -> str:
            return log_path.read_text()

        def served() -> bool:
            got = snmp_tool("snmpget", snmpd.agent, DOMAIN_COUNT, options=["-Oqv"])
            return got.returncode == 0 and got.stdout.strip() == "1"

        try:
            wait_for(served, 30)
            config.write_text(BAD)
            os.kill(agent.pid, signal.SIGHUP)
            wait_for(lambda: log_text().count("reload refused") == 2, 15)
            assert f"{config}:5: [poll] interval" in log_text()
            assert f"{config}:6: [poll] workrs: unknown key" in log_text()
            assert agent.poll() is None and served()

            config.write_text(GOOD.format(level="DEBUG", interval=30))
            os.kill(agent.pid, signal.SIGHUP)
            wait_for(lambda: "the configuration is valid; log level DEBUG" in log_text(), 15)
            # The domain timeout follows the interval when the file leaves it out.
            assert "reload: [poll] interval, [poll] domain_timeout changed; these take " \
                   "effect at the next restart" in log_text()

            for _ in range(10):                      # a burst: at most one reload each turn
                os.kill(agent.pid, signal.SIGHUP)
            time.sleep(1)
            reloads = log_text().count("reload: the configuration is valid")
            assert 2 <= reloads <= 11
            assert agent.poll() is None and served()
            assert log_text().count("AgentX session") == 1, "the session was reopened"
        finally:
            agent.terminate()
            assert agent.wait(30) == 0
