"""The threshold rules of a configuration file: ``[thresholds]`` and ``[[threshold]]``.

``[thresholds]`` is the short form, one unscoped rule per metric::

    [thresholds]
    lvxDomainMemRssKiB = 4194304
    lvxDomainCpuUtilVcpus = { rising = 9000, falling = 8000, for = 3 }

``[[threshold]]`` is one rule each, which may be scoped::

    [[threshold]]
    metric = "nicRxBitsPerSecond"      # see model.alarm.ALARM_METRICS
    rising = 5000000000
    falling = 4000000000              # default: rising
    for = 2                           # polls above rising before it counts (default 1)
    severity = "failure"              # or "warning" (the default)
    domains = ["cust-a-*"]            # name patterns (fnmatch)
    uuids = ["6695eb01-f6a4-8304-79aa-97f2502e193f"]
    tags = ["virt-1"]                 # partition (ovirtmap) tags

Every problem names the file, the line and the key.
"""

from __future__ import annotations

import re
import uuid as uuid_module
from pathlib import Path
from typing import Any

from agentx_virt.model.alarm import ALARM_METRICS, SEVERITIES
from agentx_virt.notify.settings import Threshold

_GAUGE64_MAX = 2**64 - 1
_BOUNDS = {"rising", "falling", "for", "severity"}
_SCOPES = {"domains", "uuids", "tags"}


def _bound(value: Any, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= _GAUGE64_MAX:
        raise ValueError(f"{what} must be an integer from 0 to 2^64-1, got {value!r}")
    return int(value)


def _strings(value: Any, key: str) -> tuple[str, ...]:
    if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
        raise ValueError(f"{key} must be a list of non-empty strings, got {value!r}")
    return tuple(value)


def _uuids(value: Any) -> tuple[str, ...]:
    found = []
    for text in _strings(value, "uuids"):
        try:
            found.append(str(uuid_module.UUID(text)))
        except ValueError:
            raise ValueError(f"uuids: {text!r} is not a UUID") from None
    return tuple(found)


def threshold(metric: Any, value: Any, origin: str, scoped: bool = False) -> Threshold:
    """One rule: ``value`` a number (rising) or a table of its keys."""
    if not isinstance(metric, str) or metric not in ALARM_METRICS:
        raise ValueError(f"metric {metric!r} is not one a threshold can watch; known: "
                         f"{', '.join(ALARM_METRICS)}")
    if not isinstance(value, dict):
        rising = _bound(value, "the threshold")
        return Threshold(metric, rising, rising, origin=origin)
    known = _BOUNDS | (_SCOPES if scoped else set())
    unknown = sorted(set(value) - known)
    if unknown or "rising" not in value:
        raise ValueError(f"needs rising and knows {', '.join(sorted(known))}; got keys "
                         f"{sorted(value)}")
    rising = _bound(value["rising"], "rising")
    falling = _bound(value.get("falling", rising), "falling")
    if falling > rising:
        raise ValueError(f"falling ({falling}) must not be above rising ({rising})")
    polls = value.get("for", 1)
    if isinstance(polls, bool) or not isinstance(polls, int) or not 1 <= polls <= 1000:
        raise ValueError(f"for must be a number of polls from 1 to 1000, got {polls!r}")
    severity = value.get("severity", "warning")
    if severity not in SEVERITIES:
        raise ValueError(f"severity must be one of {', '.join(SEVERITIES)}, got {severity!r}")
    return Threshold(metric, rising, falling, polls, severity,
                     _uuids(value.get("uuids", [])), _strings(value.get("domains", []),
                                                             "domains"),
                     _strings(value.get("tags", []), "tags"), origin)


def _header_lines(text: str, name: str) -> list[int]:
    return [number for number, line in enumerate(text.splitlines(), 1)
            if re.match(rf"\s*\[\[\s*{re.escape(name)}\s*\]\]", line)]


def _key_line(text: str, start: int, key: str) -> int:
    """The line of ``key = ...`` from line ``start`` up to the next header (else start)."""
    lines = text.splitlines()
    for number in range(start + 1, len(lines) + 1):
        line = lines[number - 1]
        if re.match(r"\s*\[", line):
            break
        if re.match(rf"\s*{re.escape(key)}\s*=", line):
            return number
    return start


def short_form(path: Path, table: dict[str, Any], line_of: Any) -> tuple[list[Threshold],
                                                                        list[str]]:
    """``[thresholds]``: the rules and the problems (``line_of(key)`` finds a line)."""
    rules, problems = [], []
    for metric, value in table.items():
        where = f"{path}:{line_of(metric)}"
        try:
            rules.append(threshold(metric, value, f"{path.name}:{line_of(metric)} "
                                                  f"[thresholds] {metric}"))
        except ValueError as exc:
            problems.append(f"{where}: [thresholds] {metric}: {exc}")
    return rules, problems


def rule_list(path: Path, text: str, tables: Any) -> tuple[list[Threshold], list[str]]:
    """``[[threshold]]``: the rules and the problems."""
    headers = _header_lines(text, "threshold")
    if not isinstance(tables, list) or not all(isinstance(t, dict) for t in tables):
        single = [number for number, line in enumerate(text.splitlines(), 1)
                  if re.match(r"\s*\[\s*threshold\s*\]", line)]
        return [], [f"{path}:{(headers or single or [0])[0]}: threshold must be written "
                    f"as [[threshold]] tables"]
    rules, problems = [], []
    for n, table in enumerate(tables):
        start = headers[n] if n < len(headers) else 0
        rest = {k: v for k, v in table.items() if k != "metric"}
        try:
            if "metric" not in table:
                raise ValueError("needs metric")
            rules.append(threshold(table["metric"], rest, f"{path.name}:{start} [[threshold]] "
                                   f"{table['metric']}", scoped=True))
        except ValueError as exc:
            bad = next((k for k in table if str(exc).startswith(k)), "metric")
            problems.append(f"{path}:{_key_line(text, start, bad)}: [[threshold]] #{n + 1}: "
                            f"{exc}")
    return rules, problems
