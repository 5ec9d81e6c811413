"""Address parsing, the trap queue's accounting, OIDs, the command line, and the daemon's
malloc setting."""

from __future__ import annotations

import dataclasses
import logging
import os
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any, Callable, Optional, cast

import pytest

from agentx_virt.agentx.address import (
    DEFAULT_PATHS,
    MasterAddress,
    parse_address,
    permission_hint,
)
from agentx_virt.agentx.errors import AddressError
from agentx_virt.agentx.traps import Trap, TrapQueue
from agentx_virt.app import cli
from agentx_virt.collector.calls import SLOW_REFRESH_CYCLES, CallMemo, Calls
from agentx_virt.collector.connection import Connection
from agentx_virt.collector.outage import OutageLog
from agentx_virt.demo.snmpd import PrivateSnmpd
from agentx_virt.model.record import slotted
from agentx_virt.model.snapshot import DomainStats
from agentx_virt.oid import format_oid, parse_oid


@pytest.mark.parametrize("text, parsed", [
    ("/var/agentx/master", MasterAddress(path="/var/agentx/master")),
    ("unix:/run/agentx.sock", MasterAddress(path="/run/agentx.sock")),
    ("tcp:127.0.0.1:705", MasterAddress(host="127.0.0.1", port=705)),
    ("TCP:localhost:1705", MasterAddress(host="localhost", port=1705)),
    ("tcp6:[::1]:705", MasterAddress(host="::1", port=705)),
    ("127.0.0.1:705", MasterAddress(host="127.0.0.1", port=705)),
    ("default", MasterAddress(path="/var/agentx/master", also=("/var/run/agentx/master",))),
])
def test_addresses_in_net_snmp_notation(text: str, parsed: MasterAddress) -> None:
    assert parse_address(text) == parsed


@pytest.mark.parametrize("text, why", [
    ("", "empty"),
    ("udp:127.0.0.1:705", "not UDP"),
    ("unix:relative.sock", "absolute path"),
    ("tcp:127.0.0.1:http", "not a number"),
    ("tcp:127.0.0.1:70000", "outside 1..65535"),
    ("master", "expected /path"),
])
def test_bad_addresses_say_what_is_wrong(text: str, why: str) -> None:
    with pytest.raises(AddressError, match=why):
        parse_address(text)


def test_address_text_round_trips() -> None:
    for text in ("unix:/x/y", "tcp:127.0.0.1:705", "tcp:[::1]:705"):
        assert str(parse_address(text)) == text


def test_the_default_address_tries_each_socket_in_turn(tmp_path: Path) -> None:
    assert str(parse_address("default")) == " or ".join(f"unix:{p}" for p in DEFAULT_PATHS)
    first, second = str(tmp_path / "a"), str(tmp_path / "b")
    address = MasterAddress(path=first, also=(second,))
    with pytest.raises(OSError, match=f"{first}: No such file.*{second}: No such file"):
        address.connect(1.0)
    with socket.socket(socket.AF_UNIX) as listener:
        listener.bind(second)
        listener.listen()
        with address.connect(1.0) as sock:
            assert sock.getpeername() == second


def test_a_socket_this_user_may_not_open_gets_a_hint_naming_mode_owner_and_fixes(
        tmp_path: Path) -> None:
    path = str(tmp_path / "master")
    with socket.socket(socket.AF_UNIX) as listener:
        listener.bind(path)
        os.chmod(path, 0o600)
        hint = permission_hint(path)
    assert "the AgentX socket" in hint and "it is 0600" in hint
    assert "agentXPerms 0660 0755 Debian-snmp agentx-virt" in hint
    assert "agentXSocket tcp:localhost:705" in hint


def test_oid_text() -> None:
    assert parse_oid(".1.3.6.1") == (1, 3, 6, 1) == parse_oid("1.3.6.1")
    assert format_oid((1, 3, 6, 1)) == ".1.3.6.1"
    for bad in ("1.x.3", "1.3.4294967296", "1..2"):
        with pytest.raises(ValueError):
            parse_oid(bad)


def test_trap_queue_counts_and_logs_overflow(caplog: pytest.LogCaptureFixture) -> None:
    now = [0.0]
    queue = TrapQueue(capacity=2, clock=lambda: now[0])
    woken = []
    queue.set_waker(lambda: woken.append(1))
    with caplog.at_level(logging.WARNING, logger="agentx_virt.agentx.traps"):
        assert queue.put(Trap((1, 1))) and queue.put(Trap((1, 2)))
        assert not queue.put(Trap((1, 3)))
        assert not queue.put(Trap((1, 4)))
    assert len(woken) == 2
    stats = queue.stats()
    assert (stats.queued, stats.dropped, stats.waiting) == (2, 2, 2)
    assert len(caplog.records) == 1 and "dropped 1 trap(s), latest .1.3" in caplog.text
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="agentx_virt.agentx.traps"):
        queue.report_drops()           # within the interval: held back
        assert not caplog.records
        now[0] = 11.0
        queue.report_drops()           # the later drop is reported, never lost
    assert "dropped 1 more trap(s); 2 dropped since start" in caplog.text
    first = queue.pop()
    assert first is not None and first.trap_oid == (1, 1)
    queue.requeue([first])
    assert [queue.pop(), queue.pop(), queue.pop()] == [first, Trap((1, 2)), None]


def test_trap_queue_needs_room() -> None:
    with pytest.raises(ValueError, match="at least 1"):
        TrapQueue(capacity=0)


def run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "agentx_virt", *args], capture_output=True,
                          text=True, timeout=60, stdin=subprocess.DEVNULL)


def test_cli_version() -> None:
    result = run_cli("--version")
    assert result.returncode == 0 and result.stdout.startswith("agentx-virt ")


@pytest.mark.peers
def test_cli_probe_against_snmpd(snmpd: PrivateSnmpd) -> None:
    result = run_cli("probe", "--agentx", snmpd.agentx_address)
    assert result.returncode == 0, result.stderr
    assert f"AgentX master at {snmpd.agentx_address} answered: session" in result.stdout


def test_cli_probe_reports_a_missing_master_and_a_bad_address() -> None:
    missing = run_cli("probe", "--agentx", "/nonexistent/agentx")
    assert missing.returncode == 1
    assert "cannot reach the AgentX master at unix:/nonexistent/agentx" in missing.stderr
    bad = run_cli("probe", "--agentx", "udp:127.0.0.1:705")
    assert bad.returncode == 2 and "not UDP" in bad.stderr


def test_cli_compile_mib_refuses_a_directory_without_the_ietf_modules(tmp_path: Path) -> None:
    result = run_cli("compile-mib", "--ietf-dir", str(tmp_path), "--out", str(tmp_path / "o"))
    assert result.returncode == 1
    assert "pysmi did not compile" in result.stderr and "SNMPv2-TC" in result.stderr
    missing = run_cli("compile-mib", "--ietf-dir", str(tmp_path / "nope"))
    assert missing.returncode == 2 and "is not a directory" in missing.stderr


@pytest.mark.parametrize("argv, level", [
    (["run", "--log-level", "info"], "INFO"),
    (["--log-level", "debug", "run"], "DEBUG"),
    (["--log-level", "error", "dump", "--log-level", "Warning"], "WARNING"),
    (["dump"], None),
])
def test_cli_log_level_before_or_after_the_command(argv: list[str], level: Optional[str]) -> None:
    assert cli._parser().parse_args(argv).log_level == level


def test_slotted_records_stay_frozen_dataclasses_without_a_dict() -> None:
    stats = DomainStats(uuid="u", name="n")
    assert not hasattr(stats, "__dict__")
    assert dataclasses.replace(stats, name="m") == DomainStats(uuid="u", name="m")
    assert stats.state is None                       # defaults still apply
    with pytest.raises(dataclasses.FrozenInstanceError):
        stats.name = "o"  # type: ignore[misc]
    with pytest.raises(TypeError, match="above @dataclass"):
        slotted(DomainStats)


@pytest.mark.parametrize("environment, applied",
                         [({}, "True"), ({"MALLOC_ARENA_MAX": "4"}, "False")])
def test_malloc_arenas_are_capped_unless_the_user_chose(environment: dict[str, str],
                                                        applied: str) -> None:
    """glibc (Debian) has mallopt; a MALLOC_ARENA_MAX the user set is left alone."""
    env = {key: value for key, value in os.environ.items() if key != "MALLOC_ARENA_MAX"}
    result = subprocess.run([sys.executable, "-c", "from agentx_virt.app.malloc import "
                             "limit_arenas; print(limit_arenas())"], capture_output=True, text=True,
                            env={**env, **environment}, check=True, stdin=subprocess.DEVNULL)
    assert result.stdout.strip() == applied


def test_an_outage_is_one_warning_then_a_reminder_every_period_then_one_info(
        caplog: pytest.LogCaptureFixture) -> None:
    now = [100.0]
    outage = OutageLog(logging.getLogger("agentx_virt.test"), "libvirt at test:///x",
                       reminder_s=300, clock=lambda: now[0])
    outage.recovered()                                  # nothing was down: nothing said
    with caplog.at_level(logging.INFO, logger="agentx_virt.test"):
        for _ in range(700):                            # a poll a second for 700 s
            outage.failed("socket gone", 1)
            now[0] += 1
        outage.recovered()
        outage.recovered()
    levels = [(r.levelname, r.getMessage()[:40]) for r in caplog.records]
    assert levels == [
        ("WARNING", "libvirt at test:///x unavailable: socket"),
        ("WARNING", "libvirt at test:///x still unavailable a"),
        ("WARNING", "libvirt at test:///x still unavailable a"),
        ("INFO", "libvirt at test:///x is back after 700.0 s"[:40])]


def test_bulk_batches_share_a_call_per_slot_and_one_for_the_lone_domains() -> None:
    from agentx_virt.collector.refs import bulk_batches
    slots = {"a": 0, "b": 1, "c": 0, "d": 2, "e": 3, "f": 1}
    assert bulk_batches(list("abcdef"), slots.__getitem__) == [
        (0, ["a", "c"]), (1, ["b", "f"]), (2, ["d", "e"])]
    assert bulk_batches(["e", "d"], slots.__getitem__) == [(3, ["e", "d"])]
    assert bulk_batches(["a", "c"], slots.__getitem__) == [(0, ["a", "c"])]
    assert bulk_batches([], slots.__getitem__) == []


def test_bulk_calls_are_sized_to_a_quarter_of_their_deadline() -> None:
    from agentx_virt.collector.prefetch import ChunkSizer, chunked

    sizer = ChunkSizer(deadline_s=2.0, first=100, most=5000)
    assert sizer.size == 100
    sizer.measured(100, 0.01)            # 0.1 ms per domain: 5,000 would fit, but
    assert sizer.size == 200             # it grows at most twofold per call
    for _ in range(10):
        sizer.measured(sizer.size, sizer.size * 0.0001)
    assert sizer.size == 5000
    for _ in range(20):                  # the host slows to 2 ms per domain
        sizer.measured(1000, 2.0)
    assert sizer.size == 250             # 0.25 x 2 s / 2 ms
    sizer.timed_out(250)
    assert sizer.size == 125
    sizer.timed_out(1)
    assert sizer.size == 1               # never below one domain
    sizer.measured(0, 1.0)               # an empty call says nothing
    assert sizer.size == 1
    assert chunked([(0, list("abcde")), (1, list("xy"))], 2) == [
        (0, ["a", "b"]), (0, ["c", "d"]), (0, ["e"]), (1, ["x", "y"])]


class _DirectConnection:
    """Runs the call, as Connection.call does on a connection that never fails."""

    def call(self, _what: str, function: Callable[..., Any], *args: Any) -> Any:
        return function(*args)


def test_an_empty_answer_is_kept_for_the_slow_refresh_and_any_other_is_asked_every_poll(
        ) -> None:
    memo = CallMemo()
    answers: list[dict[str, int]] = [{}, {"rss": 1}, {"rss": 2}]
    asked: list[int] = []

    def memory_stats() -> dict[str, int]:
        asked.append(memo.cycle)
        return answers[min(len(asked) - 1, len(answers) - 1)]

    calls = Calls(cast(Connection, _DirectConnection()), cast(Any, None), "d", memo)
    seen = []
    for cycle in range(1, SLOW_REFRESH_CYCLES + 4):
        memo.cycle = cycle
        seen.append(calls.cached("u", "memoryStats", memory_stats, empty_only=True))
    # Empty at cycle 1: not asked again until SLOW_REFRESH_CYCLES later; then every poll.
    first_again = 1 + SLOW_REFRESH_CYCLES
    assert asked == [1, first_again, first_again + 1, first_again + 2]
    assert seen == [{}] * SLOW_REFRESH_CYCLES + [{"rss": 1}, {"rss": 2}, {"rss": 2}]
