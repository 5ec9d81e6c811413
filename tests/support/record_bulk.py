"""Record real QEMU/TCG bulk statistics records for the case table of
``tests/test_bulk_records.py``: ``python -m tests.support.record_bulk OUT.json``.

A private libvirtd runs one small domain (``start_domain``); its record is taken
running, paused and shut off, with every group the agent can ask for, as libvirt
returned it (plus the domain XML the collector reads its layout from).
"""

from __future__ import annotations

import json
import os
import signal
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import libvirt

from agentx_virt.collector.sample import NOWAIT, bulk_groups

from .libvirtd import PrivateLibvirtd


def _ignore(call: Any) -> None:
    try:
        call()
    except libvirt.libvirtError:
        pass


def record(conn: libvirt.virConnect, dom: libvirt.virDomain) -> dict[str, Any]:
    groups = bulk_groups(lambda _group: True)
    found = conn.domainListGetStats([dom], groups, NOWAIT)
    return dict(found[0][1])


def main(out: Path) -> None:
    with PrivateLibvirtd(Path(tempfile.mkdtemp(prefix="axv-rec-"))) as daemon:
        daemon.start_domain("rec1", 1)
        conn = libvirt.open(daemon.uri)
        dom = conn.lookupByName("rec1")
        time.sleep(3)                     # a few seconds of firmware: counters move
        cases = {"running": record(conn, dom)}
        # A hung QEMU whose job a stuck call holds: NOWAIT returns what needs no monitor.
        pid = daemon.qemu_pid("rec1")
        os.kill(pid, signal.SIGSTOP)
        stuck = threading.Thread(target=lambda: _ignore(dom.memoryStats), daemon=True)
        stuck.start()
        time.sleep(1)
        busy = libvirt.open(daemon.uri)
        cases["monitor held by a stuck call"] = record(busy, busy.lookupByName("rec1"))
        os.kill(pid, signal.SIGCONT)
        stuck.join(30)
        busy.close()
        dom.suspend()
        cases["paused"] = record(conn, dom)
        dom.destroy()
        cases["shut off"] = record(conn, dom)
        data = {"libvirt": conn.getLibVersion(), "qemu": conn.getVersion(),
                "xml": dom.XMLDesc(0), "records": cases}
        conn.close()
    out.write_text(json.dumps(data, indent=1, sort_keys=True) + "\n")


if __name__ == "__main__":
    main(Path(sys.argv[1]))
