"""The domain index state file at scale: load, save and one new domain's assignment.

Writes a state of ENTRIES domains to a temp directory, then times (wall clock,
REPEATS times each, min / median / max in ms): ``DomainIndexRegistry.load``,
``save`` (temp file, fsync, rename, fsync of the directory), and ``assign`` of
one new UUID, which saves the whole state before it returns.  The last line is
``entries=.. bytes=.. load_ms=min/median/max save_ms=.. assign_new_ms=..``.

    python bench/state_file.py --entries 100000 --repeats 5
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
import uuid
from pathlib import Path
from typing import Callable

from agentx_virt.snmp.domain_index import STATE_FILE, DomainIndexRegistry


def timed(repeats: int, action: Callable[[int], object]) -> str:
    times = []
    for k in range(repeats):
        started = time.perf_counter()
        action(k)
        times.append((time.perf_counter() - started) * 1000)
    return f"{min(times):.1f}/{statistics.median(times):.1f}/{max(times):.1f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--entries", type=int, default=100000, help="domains in the state "
                        "(default 100000)")
    parser.add_argument("--repeats", type=int, default=5, help="timings of each step "
                        "(default 5)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as work:
        path = Path(work) / STATE_FILE
        registry = DomainIndexRegistry()
        registry.assign((str(uuid.UUID(int=n)) for n in range(1, args.entries + 1)),
                        time.time())
        registry.save(path)
        size = path.stat().st_size
        load = timed(args.repeats, lambda _k: DomainIndexRegistry.load(path))
        save = timed(args.repeats, lambda _k: registry.save(path))
        owned = DomainIndexRegistry.load(path)
        assign = timed(args.repeats, lambda k: owned.assign(
            [str(uuid.UUID(int=args.entries + 1 + k))], time.time()))
    print(f"entries={args.entries} bytes={size} load_ms={load} save_ms={save} "
          f"assign_new_ms={assign}")


if __name__ == "__main__":
    main()
