"""The agent's configuration: a TOML file, overridden by command-line flags.

Example (every key optional)::

    [libvirt]
    uri = "qemu:///system"          # else $LIBVIRT_DEFAULT_URI, else qemu:///system

    [agentx]
    address = "/var/agentx/master"  # /path, unix:/path or tcp:HOST:PORT
    trap_queue = 10000              # notifications waiting for snmpd, at most

    [poll]
    interval = 10                   # seconds between polls, 1 to 86400
    instances = 1                   # reader instances (domains split by ovirtmap tag)
    domain_timeout = 5              # seconds one libvirt call may take (default: half
                                    # the interval, at most 5; shorter than interval)
    workers = 2                     # worker threads per reader
    stats = ["cpu", "memory", "vcpu", "disk", "interface", "cpu_util", ...]
    include = ["web-*"]             # domain name or UUID patterns (fnmatch)
    exclude = ["test-*"]

    [agent]
    state_dir = "/var/lib/agentx-virt"
    log_level = "INFO"

    [traps]
    enable = ["state", "define", "io_error", "job", "poll", "threshold", "libvirt"]
    persistent = false              # re-send every domain's state each interval
    hold_down = 0                   # seconds: at most one state trap per domain per this
    stall_cycles = 3                # polls without data before lvxDomainPollStalled

    [thresholds]                    # lvxDomainThresholdCrossed when a polled value rises
                                    # above "rising", Cleared once it is back at or below
                                    # "falling" (default: rising); the metric's MIB units
    lvxDomainCpuUtilVcpus = { rising = 9000, falling = 8000 }   # hundredths of a percent
    lvxDomainMemRssKiB = 4194304

``packaging/agentx-virt.toml`` shows every key at its default.  Every unknown
key, key outside a section or bad value is a problem naming the file, the line and
the key; ``load`` raises one ``ConfigError`` with all of them.
"""

from __future__ import annotations

import math
import os
import re
import sys
from collections.abc import Mapping
from dataclasses import dataclass, fields, replace
from pathlib import Path
from typing import Any, Callable, Optional

from agentx_virt.agentx.address import DEFAULT_ADDRESS, parse_address
from agentx_virt.agentx.errors import AddressError
from agentx_virt.app.metadata_config import metadata_list
from agentx_virt.app.thresholds import rule_list, short_form
from agentx_virt.mib.views import DEFAULT_MIBS, DEFAULT_NOTIFY, NOTIFYING_MIBS, VIEWS
from agentx_virt.model.metadata import MetadataField
from agentx_virt.model.snapshot import StatGroup
from agentx_virt.notify.settings import TRAP_KINDS, Threshold, TrapSettings

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.9/3.10
    import tomli as tomllib

DEFAULT_URI = "qemu:///system"

# Statistics groups, collected unless left out of [poll] stats.
BASE_STATS = (StatGroup.CPU, StatGroup.MEMORY, StatGroup.VCPU, StatGroup.DISK,
              StatGroup.INTERFACE)
# collectd's ExtraStats names.
EXTRA_STATS = tuple(g for g in StatGroup if g not in BASE_STATS)
# perf and vcpupin are opt-in, as in collectd: at 1,000 domains they add tens of
# thousands of rows (22 events x 3 columns; vCPUs x host CPUs). fs_info needs a guest
# agent and a read-write connection.
DEFAULT_STATS = BASE_STATS + (StatGroup.CPU_UTIL, StatGroup.DISK_ERR, StatGroup.DOMAIN_STATE,
                              StatGroup.JOB_STATS_BACKGROUND, StatGroup.JOB_STATS_COMPLETED)
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR")


class ConfigError(ValueError):
    """The configuration is wrong; each problem names where and what (the message has
    one per line)."""

    def __init__(self, *problems: str) -> None:
        super().__init__("\n".join(problems))
        self.problems = problems


@dataclass(frozen=True)
class Config:
    uri: str = DEFAULT_URI
    agentx: str = DEFAULT_ADDRESS
    trap_queue: int = 10000
    interval_s: float = 10.0
    instances: int = 1
    domain_timeout_s: float = 5.0
    # Two: more threads mostly contend for the interpreter lock (CPU per domain per cycle
    # against the in-process test driver, 1,000 domains: 0.12 ms with 1 worker, 0.17 with
    # 2, 0.27-0.34 with 4), while two calls in flight keep a QEMU host's cycle short.
    workers: int = 2
    stats: tuple[StatGroup, ...] = DEFAULT_STATS
    include: tuple[str, ...] = ()
    exclude: tuple[str, ...] = ()
    state_dir: Path = Path("/var/lib/agentx-virt")
    log_level: str = "INFO"
    traps: tuple[str, ...] = TRAP_KINDS
    persistent_traps: bool = False
    hold_down_s: float = 0.0
    stall_cycles: int = 3
    thresholds: tuple[Threshold, ...] = ()
    mibs: tuple[str, ...] = DEFAULT_MIBS   # the MIB modules served, by name
    notify: tuple[str, ...] = DEFAULT_NOTIFY   # the MIBs whose notifications are sent
    metadata: tuple[MetadataField, ...] = ()   # [[metadata]]: fields beside nova's

    def wants(self, group: StatGroup) -> bool:
        return group in self.stats


def _number(minimum: float, integer: bool = False) -> Callable[[Any], Any]:
    def check(value: Any) -> Any:
        kinds = (int,) if integer else (int, float)
        if isinstance(value, bool) or not isinstance(value, kinds) or value < minimum:
            what = "an integer" if integer else "a number"
            raise ValueError(f"must be {what} >= {minimum:g}, got {value!r}")
        return value
    return check


MAX_INTERVAL_S = 86400.0


def _seconds(minimum: float, maximum: float = MAX_INTERVAL_S) -> Callable[[Any], Any]:
    """A finite number of seconds from ``minimum`` to ``maximum`` (inf, nan, 1e10 are not)."""
    def check(value: Any) -> Any:
        if isinstance(value, bool) or not isinstance(value, (int, float)) or \
                not math.isfinite(value) or not minimum <= value <= maximum:
            raise ValueError(f"must be a number of seconds from {minimum:g} to {maximum:g}, "
                             f"got {value!r}")
        return value
    return check


def _directory(value: Any) -> Path:
    text = str(value) if isinstance(value, Path) else _text(value)
    if not text.strip():
        raise ValueError("must name a directory, got an empty path")
    return Path(text)


def _text(value: Any) -> str:
    if not isinstance(value, str) or not value:
        raise ValueError(f"must be a non-empty string, got {value!r}")
    return value


def _address(value: Any) -> str:
    try:
        parse_address(_text(value))
    except AddressError as exc:
        raise ValueError(str(exc)) from None
    return str(value)


def _patterns(value: Any) -> tuple[str, ...]:
    if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
        raise ValueError(f"must be a list of non-empty strings, got {value!r}")
    return tuple(value)


def _choices(known: tuple[str, ...], what: str) -> Callable[[Any], tuple[str, ...]]:
    """A checker for a list of names from ``known`` (duplicates dropped, order kept)."""
    def check(value: Any) -> tuple[str, ...]:
        names = _patterns(value)
        unknown = [n for n in names if n not in known]
        if unknown:
            raise ValueError(f"unknown {what} {unknown}; known: {', '.join(known)}")
        return tuple(dict.fromkeys(names))
    return check


def _mib_names(value: Any) -> tuple[str, ...]:
    if isinstance(value, str):         # --mibs A,B
        value = [name.strip() for name in value.split(",")]
    names = _choices(tuple(VIEWS), "MIB(s)")(value)
    if not names:
        raise ValueError("must name at least one MIB")
    return names


def _stat_groups(value: Any) -> tuple[StatGroup, ...]:
    known = tuple(g.value for g in BASE_STATS + EXTRA_STATS)
    return tuple(StatGroup(name) for name in _choices(known, "statistics group(s)")(value))


def _bool(value: Any) -> bool:
    if not isinstance(value, bool):
        raise ValueError(f"must be true or false, got {value!r}")
    return value


def _level(value: Any) -> str:
    level = _text(value).upper()
    if level not in LOG_LEVELS:
        raise ValueError(f"must be one of {', '.join(LOG_LEVELS)}, got {value!r}")
    return level


# (section, key) -> (Config field, checker)
_KEYS: Mapping[tuple[str, str], tuple[str, Callable[[Any], Any]]] = {
    ("libvirt", "uri"): ("uri", _text),
    ("agentx", "address"): ("agentx", _address),
    ("agentx", "trap_queue"): ("trap_queue", _number(1, integer=True)),
    ("poll", "interval"): ("interval_s", _seconds(1)),
    ("poll", "instances"): ("instances", _number(1, integer=True)),
    ("poll", "domain_timeout"): ("domain_timeout_s", _seconds(0.1)),
    ("poll", "workers"): ("workers", _number(1, integer=True)),
    ("poll", "stats"): ("stats", _stat_groups),
    ("poll", "include"): ("include", _patterns),
    ("poll", "exclude"): ("exclude", _patterns),
    ("agent", "state_dir"): ("state_dir", _directory),
    ("agent", "log_level"): ("log_level", _level),
    ("traps", "enable"): ("traps", _choices(TRAP_KINDS, "notification kind(s)")),
    ("mibs", "serve"): ("mibs", _mib_names),
    ("mibs", "notify"): ("notify", _choices(NOTIFYING_MIBS, "notifying MIB(s)")),
    ("traps", "persistent"): ("persistent_traps", _bool),
    ("traps", "hold_down"): ("hold_down_s", _number(0)),
    ("traps", "stall_cycles"): ("stall_cycles", _number(1, integer=True)),
}


# Config field -> the command-line flag that sets it, for error messages.
_FLAGS = {"uri": "--uri", "agentx": "--agentx", "interval_s": "--interval",
          "state_dir": "--state-dir", "log_level": "--log-level", "mibs": "--mibs"}


def _line_of(text: str, section: str, key: Optional[str]) -> int:
    """Best-effort line number of ``[section]`` or of ``key`` inside it (1-based, 0 unknown)."""
    current = ""
    for number, line in enumerate(text.splitlines(), 1):
        header = re.match(r"\s*\[([^\]]+)\]", line)
        if header:
            current = header.group(1).strip()
            if key is None and current == section:
                return number
            continue
        if key is not None and current == section and re.match(rf"\s*{re.escape(key)}\s*=", line):
            return number
    return 0


def _line_of_top_key(text: str, key: str) -> int:
    """The line of ``key = ...`` before the first section header (0 unknown)."""
    for number, line in enumerate(text.splitlines(), 1):
        if re.match(r"\s*\[", line):
            return 0
        if re.match(rf"\s*{re.escape(key)}\s*=", line):
            return number
    return 0


def load(path: Optional[Path], overrides: Mapping[str, Any] = {},
         environ: Mapping[str, str] = os.environ) -> Config:
    """Read ``path`` (None: defaults only), then apply command-line ``overrides``.

    Raises:
        ConfigError: unreadable file, bad TOML, unknown key or bad value.
    """
    values: dict[str, Any] = {}
    where_from: dict[str, str] = {}     # Config field -> where its value came from
    problems: list[str] = []
    uri_from_env = environ.get("LIBVIRT_DEFAULT_URI")
    if uri_from_env:
        values["uri"] = uri_from_env
    if path is not None:
        problems += _read_file(path, values, where_from)
    by_field = {field_name: check for field_name, check in _KEYS.values()}
    for field_name, value in overrides.items():
        if value is None:
            continue
        flag = _FLAGS.get(field_name, field_name)
        try:
            values[field_name] = by_field[field_name](value)
        except ValueError as exc:
            problems.append(f"command line {flag}: {exc}")
        where_from[field_name] = flag
    if problems:
        raise ConfigError(*problems)
    if "domain_timeout_s" not in values:
        # Unset: half the interval, at most the default 5 s.
        interval = values.get("interval_s", Config.interval_s)
        values["domain_timeout_s"] = min(Config.domain_timeout_s, interval / 2)
        where_from["domain_timeout_s"] = "default: half the interval, at most 5 s"
    config = replace(Config(), **values)
    if config.domain_timeout_s >= config.interval_s:
        raise ConfigError(
            f"[poll] domain_timeout ({config.domain_timeout_s:g} s, from "
            f"{where_from.get('domain_timeout_s', 'the default')}) must be shorter than "
            f"[poll] interval ({config.interval_s:g} s, from "
            f"{where_from.get('interval_s', 'the default')})")
    return config


def _read_file(path: Path, values: dict[str, Any], where_from: dict[str, str]) -> list[str]:
    """The file's settings into ``values``, each with its file:line in ``where_from``;
    returns every problem found (a key that is wrong does not hide the next one).

    Raises:
        ConfigError: the file cannot be read, or is not TOML.
    """
    try:
        text = path.read_text()
    except OSError as exc:
        raise ConfigError(f"cannot read config file {path}: {exc}") from None
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}") from None
    problems: list[str] = []
    for section, table in data.items():
        if section == "metadata":
            fields, found = metadata_list(path, text, table)
            values["metadata"] = tuple(fields)
            problems += found
            continue
        if section == "threshold":
            rules, found = rule_list(path, text, table)
            values["thresholds"] = values.get("thresholds", ()) + tuple(rules)
            problems += found
            continue
        if not isinstance(table, dict):
            problems.append(f"{path}:{_line_of_top_key(text, section)}: key {section!r} "
                            f"is outside any section; put it under its [section] "
                            f"(libvirt, agentx, poll, agent, traps, thresholds)")
            continue
        if section not in {s for s, _ in _KEYS} | {"thresholds"}:
            problems.append(f"{path}:{_line_of(text, section, None)}: unknown section "
                            f"[{section}]; known: libvirt, agentx, poll, agent, traps, "
                            f"thresholds")
            continue
        if section == "thresholds":
            rules, found = short_form(path, table, lambda key: _line_of(text, "thresholds", key))
            values["thresholds"] = tuple(rules) + values.get("thresholds", ())
            problems += found
            continue
        for key, value in table.items():
            spec = _KEYS.get((section, key))
            where = f"{path}:{_line_of(text, section, key)}: [{section}] {key}"
            if spec is None:
                known = ", ".join(k for s, k in _KEYS if s == section)
                problems.append(f"{where}: unknown key; [{section}] knows {known}")
                continue
            field_name, check = spec
            try:
                values[field_name] = check(value)
            except ValueError as exc:
                problems.append(f"{where}: {exc}")
                continue
            where_from[field_name] = where.rsplit(": ", 1)[0]
    return problems


def trap_settings(config: Config) -> TrapSettings:
    """TrapSettings from the agent's Config."""
    return TrapSettings(kinds=frozenset(config.traps), persistent=config.persistent_traps,
                        hold_down_s=config.hold_down_s, stall_cycles=config.stall_cycles,
                        interval_s=config.interval_s, thresholds=config.thresholds,
                        include=config.include, exclude=config.exclude,
                        families=frozenset(config.notify))


def changed_settings(old: Config, new: Config) -> list[str]:
    """The settings (as the file names them) whose values differ between two configs."""
    names = {field_name: f"[{section}] {key}" for (section, key), (field_name, _) in
             _KEYS.items()}
    names["thresholds"] = "[thresholds]"
    names["metadata"] = "[[metadata]]"
    return [names.get(f.name, f.name) for f in fields(Config)
            if getattr(old, f.name) != getattr(new, f.name)]
