"""The active alarms on disk (``alarms.json`` in the state directory), so that a restart
neither sends a crossing again nor forgets to clear one.

Written whenever an alarm is raised or cleared, atomically (``statefile.py``).  A file
that cannot be read or parsed is reported and left for the next write to replace: the
agent then starts with no alarm, and a metric still above its threshold is crossed
again once.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable
from pathlib import Path

from agentx_virt.model.alarm import ActiveAlarm
from agentx_virt.notify.alarms import alarm_record, restored
from agentx_virt.statefile import write_atomically

log = logging.getLogger(__name__)

ALARM_FILE = "alarms.json"
_VERSION = 1


def load_alarms(path: Path) -> tuple[ActiveAlarm, ...]:
    """The alarms saved at ``path``; () for a missing file, and for an unusable one
    (logged, naming the file and what is wrong)."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return ()
    except (OSError, UnicodeDecodeError) as exc:
        log.error("cannot read the alarm state %s (%s); starting with no active alarm",
                  path, exc)
        return ()
    try:
        data = json.loads(text)
        records = data["alarms"] if data.get("version") == _VERSION else None
        if not isinstance(records, list):
            raise ValueError(f"not version {_VERSION} with a list of alarms")
    except (ValueError, AttributeError, KeyError, TypeError) as exc:
        log.error("the alarm state %s is unusable (%s); starting with no active alarm",
                  path, exc)
        return ()
    alarms = [restored(r) if isinstance(r, dict) else None for r in records]
    odd = sum(1 for a in alarms if a is None)
    if odd:
        log.warning("the alarm state %s: %d record(s) unusable and left out", path, odd)
    return tuple(a for a in alarms if a is not None)


def save_alarms(path: Path, alarms: Iterable[ActiveAlarm]) -> None:
    """Raises OSError when the file cannot be written."""
    write_atomically(path, json.dumps(
        {"version": _VERSION, "alarms": [alarm_record(a) for a in alarms]}, indent=1) + "\n")
