"""systemd's notification protocol against a datagram socket the test binds, the
watchdog's health rule, and log lines for the journal."""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from agentx_virt.app.logs import JournalFormatter, stderr_is_journal
from agentx_virt.app.systemd import Systemd, monotonic_usec
from agentx_virt.collector.assignment import wedged as _wedged


@pytest.fixture
def sock(short_tmp: Path) -> Iterator[socket.socket]:
    """The notification socket systemd would listen on (``short_tmp / "notify"``)."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as listener:
        listener.bind(str(short_tmp / "notify"))
        listener.settimeout(1)
        yield listener


def drained(sock: socket.socket) -> list[bytes]:
    sock.settimeout(0.2)
    got = []
    try:
        while True:
            got.append(sock.recv(4096))
    except socket.timeout:
        return got


def test_without_notify_socket_nothing_is_sent() -> None:
    systemd = Systemd({})
    assert not systemd.enabled and not systemd.notify(READY=1)
    assert systemd.watchdog_s is None


def test_fields_go_as_one_datagram_and_status_only_when_it_changes(
        short_tmp: Path, sock: socket.socket) -> None:
    systemd = Systemd({"NOTIFY_SOCKET": str(short_tmp / "notify")})
    before = monotonic_usec()
    assert systemd.notify(RELOADING=1, MONOTONIC_USEC=monotonic_usec())
    lines = sock.recv(4096).decode().split("\n")
    assert lines[0] == "RELOADING=1" and int(lines[1].split("=")[1]) >= before
    systemd.status("6 domains")
    systemd.status("6 domains")
    systemd.status("7 domains")
    assert drained(sock) == [b"STATUS=6 domains", b"STATUS=7 domains"]
    systemd.close()


def test_an_abstract_socket_and_a_reader_that_falls_behind_never_block(short_tmp: Path) -> None:
    name = f"axv-test-{os.getpid()}"
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as abstract:
        abstract.bind("\0" + name)
        systemd = Systemd({"NOTIFY_SOCKET": "@" + name})
        started = time.monotonic()
        sent = sum(systemd.notify(STATUS=n) for n in range(500))   # nobody reads
        assert time.monotonic() - started < 5
        assert 0 < sent < 500                # the queue filled; the rest were let go
        assert abstract.recv(4096) == b"STATUS=0"
        systemd.close()


def test_the_watchdog_is_fed_at_half_its_period_and_only_while_healthy(
        short_tmp: Path, sock: socket.socket) -> None:
    systemd = Systemd({"NOTIFY_SOCKET": str(short_tmp / "notify"), "WATCHDOG_USEC": "2000000",
                       "WATCHDOG_PID": str(os.getpid())})
    assert systemd.watchdog_s == 2.0
    systemd.watchdog(False, 100.0)        # unhealthy: nothing, so systemd restarts it
    systemd.watchdog(True, 100.5)
    systemd.watchdog(True, 101.0)         # less than half the period since: nothing
    systemd.watchdog(True, 101.6)
    assert drained(sock) == [b"WATCHDOG=1", b"WATCHDOG=1"]
    systemd.close()
    other = Systemd({"NOTIFY_SOCKET": str(short_tmp / "notify"), "WATCHDOG_USEC": "2000000",
                     "WATCHDOG_PID": "1"})
    assert other.watchdog_s is None       # another process's watchdog


def test_a_reader_is_wedged_when_its_thread_died_or_a_cycle_overruns() -> None:
    def reader(alive: bool, busy_since: Any, started: bool = True) -> Any:
        thread = threading.Thread(target=lambda: None)
        if started:
            thread.start()
            thread.join()
        fake = SimpleNamespace(is_alive=lambda: alive, ident=thread.ident)
        return SimpleNamespace(thread=fake, busy_since=busy_since,
                               config=SimpleNamespace(interval_s=10))
    assert not _wedged(reader(True, None), 1000)        # waiting for its next cycle
    assert not _wedged(reader(True, 960), 1000)         # 40 s into a cycle: within 50 s
    assert _wedged(reader(True, 940), 1000)             # 60 s: stuck
    assert _wedged(reader(False, None), 1000)           # its thread ended
    assert not _wedged(reader(False, None, started=False), 1000)   # not started yet


def test_log_lines_carry_a_syslog_priority_only_when_stderr_is_the_named_journal_stream(
        tmp_path: Path) -> None:
    with open(tmp_path / "stream", "w") as stream, open(tmp_path / "other", "w") as other:
        info = os.fstat(stream.fileno())
        named = {"JOURNAL_STREAM": f"{info.st_dev}:{info.st_ino}"}
        assert stderr_is_journal(named, stream.fileno())
        assert not stderr_is_journal(named, other.fileno())      # inherited variable only
        assert not stderr_is_journal({}, stream.fileno())
        assert not stderr_is_journal({"JOURNAL_STREAM": "garbage"}, stream.fileno())
    formatter = JournalFormatter()
    for level, prefix in ((logging.DEBUG, "<7>"), (logging.INFO, "<6>"),
                          (logging.WARNING, "<4>"), (logging.ERROR, "<3>")):
        record = logging.LogRecord("agentx_virt.x", level, __file__, 1, "said %s", ("it",),
                                   None)
        assert formatter.format(record) == f"{prefix}agentx_virt.x: said it"
