"""Poll CPU beside collectd's virt plugin: N QEMU/TCG domains on a private libvirtd, read
at the same interval by ``agentx-virt run`` (behind a private snmpd) and by collectd with
the virt plugin alone, both running at once against the same libvirtd.

collectd (Debian's ``collectd-core``) reads what its virt plugin reads by default plus the
ExtraStats nearest the agent's default selectors (cpu_util, disk_err, domain_state,
job_stats_background, vcpu: it collects one kind of job statistics at a time, so not also
job_stats_completed, which the agent reads); it has no write plugin, so its figure is its
reading alone.  After two intervals of warm-up, each window of ``--window`` intervals
reads both processes' CPU (user + system, /proc) and gives one ratio, agent / collectd.
The last line is ``domains=N interval=S agent_cpu_s_per_cycle=<min/median/max>
collectd_cpu_s_per_cycle=<min/median/max> ratio=<min/median/max>``.  Needs root.

    python bench/vs_collectd.py --domains 16 --interval 5
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from agentx_virt.demo.snmpd import PrivateSnmpd, stop_process  # noqa: E402
from tests.support.libvirtd import PrivateLibvirtd  # noqa: E402

_HZ = os.sysconf("SC_CLK_TCK")
COLLECTD = "/usr/sbin/collectd"
CONFIG = """Interval {interval}
Hostname "bench"
FQDNLookup false
BaseDir "{work}"
PIDFile "{work}/collectd.pid"
PluginDir "/usr/lib/collectd"
TypesDB "/usr/share/collectd/types.db"
LoadPlugin logfile
<Plugin logfile>
  LogLevel info
  File "{work}/collectd.log"
</Plugin>
LoadPlugin virt
<Plugin virt>
  Connection "{uri}"
  RefreshInterval 60
  HostnameFormat name
  ExtraStats "cpu_util disk_err domain_state job_stats_background vcpu"
</Plugin>
"""


def cpu_s(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / _HZ


def spread(values: list[float]) -> str:
    return f"{min(values):.3f}/{statistics.median(values):.3f}/{max(values):.3f}"


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--domains", type=int, default=16)
    parser.add_argument("--interval", type=int, default=5)
    parser.add_argument("--windows", type=int, default=5)
    parser.add_argument("--window", type=int, default=3, help="intervals per window")
    args = parser.parse_args(argv)
    if not Path(COLLECTD).exists() or not Path("/usr/lib/collectd/virt.so").exists():
        raise SystemExit("needs Debian's collectd-core (apt-get install collectd-core)")
    work = Path(tempfile.mkdtemp(prefix="axv-collectd-"))
    with PrivateLibvirtd(work / "libvirtd") as daemon:
        for number in range(1, args.domains + 1):
            daemon.start_domain(f"q{number}", number)
        print(f"{args.domains} QEMU/TCG domains running")
        (work / "collectd").mkdir()
        conf = work / "collectd.conf"
        conf.write_text(CONFIG.format(interval=args.interval, work=work / "collectd",
                                      uri=daemon.uri))
        with PrivateSnmpd(work / "snmpd") as snmpd:
            agent = subprocess.Popen(
                [sys.executable, "-m", "agentx_virt", "run", "--uri", daemon.uri,
                 "--agentx", snmpd.agentx_address, "--interval", str(args.interval),
                 "--state-dir", str(work / "state"), "--log-level", "warning"],
                stdin=subprocess.DEVNULL, stderr=open(work / "agent.log", "wb"))
            collectd = subprocess.Popen([COLLECTD, "-f", "-C", str(conf)],
                                        stdin=subprocess.DEVNULL,
                                        stdout=open(work / "collectd.out", "wb"),
                                        stderr=subprocess.STDOUT)
            try:
                time.sleep(2 * args.interval)
                for name, process in (("the agent", agent), ("collectd", collectd)):
                    if process.poll() is not None:
                        raise SystemExit(f"{name} exited with {process.returncode}")
                ours: list[float] = []
                theirs: list[float] = []
                for _ in range(args.windows):
                    before = cpu_s(agent.pid), cpu_s(collectd.pid)
                    time.sleep(args.window * args.interval)
                    ours.append((cpu_s(agent.pid) - before[0]) / args.window)
                    theirs.append((cpu_s(collectd.pid) - before[1]) / args.window)
            finally:
                stop_process(collectd, 10)
                stop_process(agent, 30)
        log = (work / "collectd" / "collectd.log")
        errors = [line for line in log.read_text().splitlines() if "virt" in line and
                  ("error" in line.lower() or "fail" in line.lower())] if log.exists() else []
        if errors:
            print("collectd's virt plugin reported:", *errors[:5], sep="\n  ")
    shutil.rmtree(work, ignore_errors=True)
    ratios = [a / c for a, c in zip(ours, theirs) if c > 0]
    print(f"domains={args.domains} interval={args.interval} "
          f"agent_cpu_s_per_cycle={spread(ours)} collectd_cpu_s_per_cycle={spread(theirs)} "
          f"ratio={spread(ratios) if ratios else 'none'}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
