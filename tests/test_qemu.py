"""The collector and the agent against real QEMU/TCG domains under a private libvirtd,
including a real hung domain (SIGSTOP on its QEMU process)."""

from __future__ import annotations

import os
import signal
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Callable, Optional

import libvirt
import pytest

from agentx_virt.app.config import Config
from agentx_virt.app.daemon import Agent
from agentx_virt.collector.connection import Connection
from agentx_virt.collector.poller import Poller
from agentx_virt.demo.agent_thread import AgentThread
from agentx_virt.demo.snmpd import PrivateSnmpd, snmp_tool
from agentx_virt.mib.model import shipped_mib
from agentx_virt.model.snapshot import DomainStats, PerfEvent, Snapshot, StatGroup
from agentx_virt.oid import format_oid
from tests.support.libvirtd import DOMAIN_XML, PrivateLibvirtd
from tests.support.recording import RecordedCalls

from .conftest import private_libvirtd, wait_for, wait_polls

pytestmark = pytest.mark.peers
MIB = shipped_mib()


@pytest.fixture(scope="module")
def libvirtd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PrivateLibvirtd]:
    daemon = private_libvirtd(tmp_path_factory, "the QEMU tests")
    with daemon:
        daemon.start_domain("q1", 1)
        daemon.start_domain("q2", 2)
        yield daemon


def poll(uri: str, calls: Optional[RecordedCalls] = None, **settings: object) -> Snapshot:
    config = Config(uri=uri, interval_s=5, domain_timeout_s=3)
    for key, value in settings.items():
        config = type(config)(**{**config.__dict__, key: value})
    return Poller(config, lambda _s: None, connect=calls or Connection).poll_once()


def domain(snapshot: Snapshot, name: str) -> DomainStats:
    return next(d for d in snapshot.domains if d.name == name)


def test_bulk_stats_path(libvirtd: PrivateLibvirtd) -> None:
    snapshot = poll(libvirtd.uri)
    assert snapshot.host.hypervisor_type == "QEMU"
    for name in ("q1", "q2"):
        d = domain(snapshot, name)
        assert (d.state, d.poll_status) == (1, "ok")
        assert d.cpu_time_total_ns and d.cpu_time_user_ns is not None
        assert d.memory_current_kib == 65536 and d.mem_rss_kib
        # These come only from the bulk stats groups, never from the per-call APIs.
        assert d.vcpus[0].wait_ns is not None and d.vcpus[0].delay_ns is not None
        # The host CPU of each vCPU comes from virDomainGetVcpus, as virsh vcpuinfo shows.
        host_cpus = snapshot.host.host_cpus
        assert host_cpus and all(v.physical_cpu is not None and 0 <= v.physical_cpu < host_cpus
                                 for v in d.vcpus)
        disk = d.disks[0]
        assert disk.target == "vda" and disk.read_time_ns is not None
        assert disk.capacity_bytes == 64 * 1024 * 1024
        nic = d.interfaces[0]
        assert nic.target == f"tap{name[1]}" and nic.mac == f"52:54:00:aa:00:0{name[1]}"
        assert nic.rx_bytes is not None


def test_one_bulk_statistics_call_covers_the_domains_of_a_worker(
        libvirtd: PrivateLibvirtd) -> None:
    calls = RecordedCalls()
    asked = calls.watch("domainListGetStats")
    snapshot = poll(libvirtd.uri, calls, workers=1)
    assert asked == ["2 domains"]              # not once per domain
    for name in ("q1", "q2"):                  # and each domain has its bulk-only values
        d = domain(snapshot, name)
        assert d.poll_status == "ok" and d.vcpus[0].wait_ns is not None
        assert d.disks[0].read_time_ns is not None


def test_domains_alone_in_their_worker_slots_share_one_bulk_statistics_call(
        libvirtd: PrivateLibvirtd) -> None:
    """Without the shared call each would make its own, and controlInfo before it."""
    calls = RecordedCalls()
    for workers in range(2, 32):
        poller = Poller(Config(uri=libvirtd.uri, interval_s=5, domain_timeout_s=3,
                               workers=workers), lambda _s: None, connect=calls)
        poller.partition_once()
        reader = poller.readers[0]
        slots = {reader.guard.slot(ref.uuid) for ref in poller._assignment(0)()}
        if len(slots) == 2:
            break
        poller.stop()
    else:
        pytest.fail("no worker count up to 31 puts q1 and q2 in different slots")
    bulk = calls.watch("domainListGetStats")
    control = calls.watch("controlInfo")
    try:
        snapshot = poller.poll_once()
    finally:
        poller.stop()
    assert bulk == ["2 domains"] and control == []
    assert [domain(snapshot, n).poll_status for n in ("q1", "q2")] == ["ok", "ok"]
    assert all(domain(snapshot, n).disks[0].read_time_ns is not None for n in ("q1", "q2"))


def test_control_info_is_asked_only_of_a_domain_whose_monitor_did_not_answer(
        libvirtd: PrivateLibvirtd) -> None:
    """A bulk record filled by the domain's monitor needs no controlInfo after it; a
    record without those statistics (another call holds the job) does, and a domain
    stuck past the deadline is then found without a call that blocks."""
    calls = RecordedCalls()
    asked = calls.watch("controlInfo")
    snapshot = poll(libvirtd.uri, calls, workers=1)
    assert asked == []
    assert [domain(snapshot, n).poll_status for n in ("q1", "q2")] == ["ok", "ok"]

    pid = libvirtd.qemu_pid("q1")
    holder = libvirt.openReadOnly(libvirtd.uri)
    os.kill(pid, signal.SIGSTOP)
    try:
        # Another client's monitor call on the stopped QEMU holds q1's job.
        held = threading.Thread(target=lambda: _ignore_errors(
            holder.lookupByName("q1").memoryStats), daemon=True)
        held.start()
        # Wait until libvirt reports q1's monitor busy for longer than the poller's
        # 1 s deadline, so that controlInfo alone shows it stuck.
        watcher = holder.lookupByName("q1")

        def held_past_deadline() -> bool:
            state, _details, state_ms = watcher.controlInfo()
            return bool(state == libvirt.VIR_DOMAIN_CONTROL_OCCUPIED and state_ms >= 1500)
        wait_for(held_past_deadline)
        poller = Poller(Config(uri=libvirtd.uri, interval_s=5, domain_timeout_s=1, workers=1),
                        lambda _s: None, connect=calls)
        snapshot = poller.poll_once()
        abandoned = poller.readers[0].guard.abandoned
        poller.stop()
    finally:
        os.kill(pid, signal.SIGCONT)
    held.join(30)
    holder.close()
    assert asked == ["q1"]
    assert domain(snapshot, "q1").poll_status == "timedOut"
    assert domain(snapshot, "q2").poll_status == "ok"
    assert abandoned == 0, "controlInfo found the stuck monitor without a blocked call"


def _ignore_errors(call: Callable[[], object]) -> None:
    try:
        call()
    except libvirt.libvirtError:
        pass


def test_disk_errors_are_asked_only_of_paused_qemu_domains(
        libvirtd: PrivateLibvirtd) -> None:
    """QEMU keeps a disk's I/O error status only while the error has the guest stopped."""
    calls = RecordedCalls()
    asked = calls.watch("diskErrors")
    snapshot = poll(libvirtd.uri, calls)
    assert asked == []
    assert [domain(snapshot, n).disk_errors for n in ("q1", "q2")] == [(), ()]
    conn = libvirt.open(libvirtd.uri)
    q1 = conn.lookupByName("q1")
    q1.suspend()
    try:
        snapshot = poll(libvirtd.uri, calls)
        assert asked == ["q1"]                     # paused: asked, and it has none
        assert domain(snapshot, "q1").disk_errors == () and domain(snapshot, "q1").state == 3
    finally:
        q1.resume()
        conn.close()


def test_job_stats_during_a_dump_and_after_a_managed_save(libvirtd: PrivateLibvirtd,
                                                         tmp_path: Path) -> None:
    operations = MIB.object("lvxJobOperation").syntax.enum  # type: ignore[union-attr]
    types = MIB.object("lvxJobType").syntax.enum  # type: ignore[union-attr]
    conn = libvirt.open(libvirtd.uri)
    try:
        dom = conn.lookupByName("q2")
        done, seen = threading.Event(), threading.Event()
        # The dump goes into a FIFO read slowly until a poll has seen the job: written to a
        # file it took 0.1 s, and a busy machine's poll could miss all of it.
        core = tmp_path / "q2.core"
        os.mkfifo(core)

        def dump() -> None:
            try:
                dom.coreDumpWithFormat(str(core), libvirt.VIR_DOMAIN_CORE_DUMP_FORMAT_RAW,
                                       libvirt.VIR_DUMP_MEMORY_ONLY)
            finally:
                done.set()

        def drain_core() -> None:
            with open(core, "rb") as fifo:
                while fifo.read(65536):
                    if not seen.is_set():
                        seen.wait(0.05)

        # A first poll outside the dump: a fresh libvirtd probes QEMU's capabilities on the
        # first getVersion (4.3 s measured here).
        poll(libvirtd.uri, stats=(StatGroup.JOB_STATS_BACKGROUND,))
        threads = [threading.Thread(target=drain_core), threading.Thread(target=dump)]
        for thread in threads:
            thread.start()
        running = []
        try:
            while not done.is_set():
                snapshot = poll(libvirtd.uri, stats=(StatGroup.JOB_STATS_BACKGROUND,))
                running += [j for j in domain(snapshot, "q2").jobs if j.slot == "current"]
                if running:
                    seen.set()
        finally:
            seen.set()
            for thread in threads:
                thread.join(60)
        # libvirt keeps no completed statistics for a dump; a managed save leaves them.
        dom.managedSave(0)
        saved = domain(poll(libvirtd.uri), "q2")
        saved_again = domain(poll(libvirtd.uri), "q2")     # reading must not delete them
        dom.create()                      # restore it for the tests that follow
    finally:
        conn.close()
    assert running, "a poll inside the dump sees it as the current job"
    assert all(j.operation == operations["dump"] for j in running)
    assert running[0].type == types["unbounded"] and running[0].memory_total
    assert saved.state == 5               # shut off, saved
    completed = [j for j in saved.jobs if j.slot == "completed"]
    assert [(j.type, j.operation) for j in completed] == [(types["completed"],
                                                           operations["save"])]
    # Not memory_bps: libvirt adds it to job statistics only when QEMU's transfer rate is
    # not 0, and one run here saw it absent.
    assert completed[0].downtime_ms is not None and completed[0].memory_processed
    assert [j for j in saved_again.jobs if j.slot == "completed"] == completed


def test_perf_software_events(libvirtd: PrivateLibvirtd) -> None:
    conn = libvirt.open(libvirtd.uri)
    try:
        dom = conn.lookupByName("q1")
        dom.setPerfEvents({"task_clock": True, "context_switches": True},
                          libvirt.VIR_DOMAIN_AFFECT_LIVE)
        try:
            def counted() -> bool:   # the counters start at 0 when enabled
                perf.update((p.name, p) for p in
                            domain(poll(libvirtd.uri, stats=(StatGroup.PERF,)), "q1").perf)
                return (perf["task_clock"].value or 0) > 0
            perf: dict[str, PerfEvent] = {}
            wait_for(counted)
        finally:
            dom.setPerfEvents({"task_clock": False, "context_switches": False},
                              libvirt.VIR_DOMAIN_AFFECT_LIVE)
    finally:
        conn.close()
    assert perf["task_clock"].enabled and (perf["task_clock"].value or 0) > 0
    assert perf["context_switches"].enabled and perf["context_switches"].value is not None
    assert not perf["cpu_cycles"].enabled and perf["cpu_cycles"].value is None


def test_disk_io_throttle_limits_as_virsh_blkdeviotune_shows_them(
        libvirtd: PrivateLibvirtd) -> None:
    conn = libvirt.open(libvirtd.uri)
    try:
        dom = conn.lookupByName("q2")
        dom.setBlockIoTune("vda", {"read_bytes_sec": 10485760, "write_iops_sec": 250},
                           libvirt.VIR_DOMAIN_AFFECT_LIVE)
        try:
            shown = subprocess.run(["virsh", "-c", libvirtd.uri, "blkdeviotune", "q2", "vda"],
                                   capture_output=True, text=True, check=True).stdout
            virsh = {k.strip(): int(v) for k, _, v in
                     (line.partition(":") for line in shown.splitlines()) if v.strip().isdigit()}
            (disk,) = [k for k in domain(poll(libvirtd.uri, stats=(
                StatGroup.DISK, StatGroup.DISK_IOTUNE)), "q2").disks if k.target == "vda"]
        finally:
            dom.setBlockIoTune("vda", {"read_bytes_sec": 0, "write_iops_sec": 0},
                               libvirt.VIR_DOMAIN_AFFECT_LIVE)
    finally:
        conn.close()
    assert (disk.iotune_read_bytes_sec, disk.iotune_write_iops) == (10485760, 250)
    assert (disk.iotune_total_bytes_sec, disk.iotune_read_bytes_sec,
            disk.iotune_write_bytes_sec, disk.iotune_total_iops, disk.iotune_read_iops,
            disk.iotune_write_iops) == (
        virsh["total_bytes_sec"], virsh["read_bytes_sec"], virsh["write_bytes_sec"],
        virsh["total_iops_sec"], virsh["read_iops_sec"], virsh["write_iops_sec"])
    # Without the group, no call and no value.
    (plain,) = [k for k in domain(poll(libvirtd.uri, stats=(StatGroup.DISK,)), "q2").disks
                if k.target == "vda"]
    assert plain.iotune_read_bytes_sec is None


def test_a_network_disk_has_its_size_from_the_bulk_statistics(
        libvirtd: PrivateLibvirtd, tmp_path: Path) -> None:
    """An NBD disk (qemu-nbd on a unix socket) stands for RBD and iSCSI: no file on the
    host to stat, so its size must come from QEMU."""
    image, boot, sock = tmp_path / "net.qcow2", tmp_path / "boot.qcow2", tmp_path / "nbd.sock"
    for path, size in ((image, "96M"), (boot, "64M")):
        subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", str(path), size], check=True)
    nbd = subprocess.Popen(["qemu-nbd", "--persistent", "--shared=4", "--format=qcow2",
                            f"--socket={sock}", str(image)], stdin=subprocess.DEVNULL)
    conn = libvirt.open(libvirtd.uri)
    try:
        wait_for(sock.exists)
        disk = ("<disk type='network' device='disk'><driver name='qemu' type='raw'/>"
                f"<source protocol='nbd'><host transport='unix' socket='{sock}'/></source>"
                "<target dev='vdb' bus='virtio'/></disk>")
        dom = conn.defineXML(DOMAIN_XML.format(name="n1", image=boot, interface=disk))
        libvirtd.domains.append("n1")
        dom.create()
        try:
            capacity, _allocation, physical = dom.blockInfo("vdb")
            (vdb,) = [k for k in domain(poll(libvirtd.uri, stats=(StatGroup.DISK,)),
                                        "n1").disks if k.target == "vdb"]
        finally:
            dom.destroy()
            dom.undefine()
            libvirtd.domains.remove("n1")
    finally:
        conn.close()
        nbd.terminate()
        nbd.wait(10)
    assert (vdb.kind, vdb.source) == ("network", f"nbd:{sock}")
    assert vdb.capacity_bytes == capacity == 96 * 1024 * 1024
    assert vdb.physical_bytes == physical


def test_host_cpu_and_memory_use_as_the_host_reports_them(libvirtd: PrivateLibvirtd) -> None:
    seen: list[Snapshot] = []
    config = Config(uri=libvirtd.uri, interval_s=1, domain_timeout_s=0.5,
                    stats=(StatGroup.CPU, StatGroup.HOST, StatGroup.STORAGE_POOLS))
    poller = Poller(config, seen.append)
    poller.start()
    try:
        wait_for(lambda: bool(seen) and seen[-1].host.cpu_util is not None, 15)
    finally:
        poller.stop()
    host = seen[-1].host
    meminfo = dict(line.split(":", 1) for line in Path("/proc/meminfo").read_text().splitlines())
    assert host.mem_total_kib == int(meminfo["MemTotal"].split()[0])
    assert host.mem_free_kib is not None and 0 < host.mem_free_kib < host.mem_total_kib
    assert host.cpu_util is not None and 0 <= host.cpu_util <= 10000


def test_storage_pools_of_the_test_driver() -> None:
    snapshot = poll("test:///default", stats=(StatGroup.STORAGE_POOLS,))
    conn = libvirt.openReadOnly("test:///default")
    try:
        expected = tuple((p.name(), p.UUIDString(), *p.info()) for p in
                         sorted(conn.listAllStoragePools(0), key=lambda p: p.name()))
    finally:
        conn.close()
    assert tuple((p.name, p.uuid, p.state, p.capacity_bytes, p.allocation_bytes,
                  p.available_bytes) for p in snapshot.host.pools) == expected
    assert expected and poll("test:///default").host.pools == ()


def cells(snmpd: PrivateSnmpd, name: str) -> dict[str, str]:
    base = format_oid(MIB.object(name).oid)
    result = snmp_tool("snmpbulkwalk", snmpd.agent, base, options=["-Oqe"])
    return {line.split(" ", 1)[0][len(base) + 1:]: line.split(" ", 1)[1]
            for line in result.stdout.splitlines() if " " in line}


@pytest.mark.parametrize("workers", [1, 2])
def test_a_hung_domain_does_not_stall_the_others(libvirtd: PrivateLibvirtd, snmpd: PrivateSnmpd,
                                                 short_tmp: Path, workers: int) -> None:
    """With one worker both domains share one bulk statistics call, which the fresh hang
    holds: the other domain is then asked on its own within the same cycle."""
    agent = Agent(Config(uri=libvirtd.uri, agentx=snmpd.agentx_address, interval_s=2,
                         domain_timeout_s=1, state_dir=short_tmp / "state", workers=workers))
    running = AgentThread(agent).start()
    pid = libvirtd.qemu_pid("q1")
    stopped = False
    try:
        assert running.wait_ready(30)
        wait_for(lambda: len(cells(snmpd, "lvxDomainName")) == 2)
        rows = {v.strip('"'): k for k, v in cells(snmpd, "lvxDomainName").items()}
        q1, q2 = rows["q1"], rows["q2"]
        ok, timed_out = ("1", "2")       # lvxDomainPollStatus ok(1), timedOut(2)
        wait_for(lambda: cells(snmpd, "lvxDomainPollStatus") == {q1: ok, q2: ok})
        memory_before = cells(snmpd, "lvxDomainMemoryCurrentKiB")[q1]

        os.kill(pid, signal.SIGSTOP)
        stopped = True
        wait_for(lambda: cells(snmpd, "lvxDomainPollStatus").get(q1) == timed_out, 20)
        threads_while_stuck = threading.active_count()
        cpu_seen = {cells(snmpd, "lvxDomainCpuTimeTotalNs")[q2]}
        for _ in range(4):                 # four more cycles with q1 stuck
            wait_polls(snmpd, 1)
            status = cells(snmpd, "lvxDomainPollStatus")
            assert status == {q1: timed_out, q2: ok}
            cpu_seen.add(cells(snmpd, "lvxDomainCpuTimeTotalNs")[q2])
        assert len(cpu_seen) >= 3, "q2's data must keep refreshing while q1 is stuck"
        assert int(cells(snmpd, "lvxDomainDataAgeSeconds")[q1]) >= 6
        assert cells(snmpd, "lvxDomainMemoryCurrentKiB")[q1] == memory_before  # last good
        assert threading.active_count() <= threads_while_stuck + 1, "no thread leak"

        os.kill(pid, signal.SIGCONT)
        stopped = False
        wait_for(lambda: cells(snmpd, "lvxDomainPollStatus") == {q1: ok, q2: ok}, 20)
        wait_for(lambda: cells(snmpd, "lvxDomainDataAgeSeconds")[q1] == "0", 10)
    finally:
        if stopped:
            os.kill(pid, signal.SIGCONT)
        running.stop()


def test_libvirtd_going_away_and_coming_back(libvirtd: PrivateLibvirtd, snmpd: PrivateSnmpd,
                                             short_tmp: Path) -> None:
    """Runs last in this module: it restarts the shared libvirtd."""
    agent = Agent(Config(uri=libvirtd.uri, agentx=snmpd.agentx_address, interval_s=1,
                         domain_timeout_s=0.5, state_dir=short_tmp / "state"))
    running = AgentThread(agent).start()
    connected = format_oid(MIB.object("lvxLibvirtConnected").oid + (0,))

    def libvirt_connected() -> str:
        return snmp_tool("snmpget", snmpd.agent, connected).stdout.strip().rsplit(" ", 1)[-1]

    try:
        assert running.wait_ready(30)
        wait_for(lambda: libvirt_connected() == "1")           # true(1)
        names = cells(snmpd, "lvxDomainName")
        libvirtd.stop_daemon()
        wait_for(lambda: libvirt_connected() == "2", 20)        # false(2)
        wait_for(lambda: set(cells(snmpd, "lvxDomainPollStatus").values()) == {"3"}, 20)
        assert cells(snmpd, "lvxDomainName") == names            # rows kept, still served
        libvirtd.start()
        wait_for(lambda: libvirt_connected() == "1", 30)
        wait_for(lambda: set(cells(snmpd, "lvxDomainPollStatus").values()) == {"1"}, 30)
        assert cells(snmpd, "lvxDomainName") == names
    finally:
        running.stop()
