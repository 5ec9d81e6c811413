"""The ``agentx-virt`` command line."""

from __future__ import annotations

import argparse
import logging
import math
import signal
import sys
import time
from pathlib import Path
from typing import Callable, Optional

from agentx_virt import __version__
from agentx_virt.agentx.address import (
    DEFAULT_ADDRESS,
    DEFAULT_PATHS,
    parse_address,
    unreachable,
)
from agentx_virt.agentx.errors import AddressError, AgentXError
from agentx_virt.agentx.probe import probe
from agentx_virt.app import logs
from agentx_virt.app.config import Config, ConfigError
from agentx_virt.app.config import load as load_config
from agentx_virt.app.daemon import Agent
from agentx_virt.app.reload import Reloader
from agentx_virt.app.systemd import Systemd
from agentx_virt.collector.connection import uri_problem
from agentx_virt.collector.poller import Poller
from agentx_virt.expose.dump import FORMATS, DumpSink
from agentx_virt.mib.compile import (
    COMPILED_DIR,
    PACKAGE_MIB,
    MibCompileError,
    compile_mib,
    write_compiled,
)
from agentx_virt.mib.model import shipped_mib
from agentx_virt.mib.views import DEFAULT_MIBS, VIEWS
from agentx_virt.snmp.domain_index import STATE_FILE, DomainIndexRegistry, StateFileError

_DEFAULT_TEXT = f"{DEFAULT_ADDRESS}, which tries {' then '.join(DEFAULT_PATHS)}"


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="agentx-virt",
        description="AgentX subagent serving libvirt domain statistics through snmpd.")
    parser.add_argument("--version", action="version", version=f"agentx-virt {__version__}")
    _log_option(parser, None)
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    run = commands.add_parser("run", help="poll libvirt and serve its MIBs through snmpd")
    _poll_options(run)
    run.add_argument("--agentx", metavar="ADDRESS",
                     help=f"AgentX master: /path, unix:/path, tcp:HOST:PORT or default "
                          f"(default: [agentx] address, else {_DEFAULT_TEXT})")
    run.add_argument("--interval", type=float, metavar="S",
                     help="seconds between polls, 1 to 86400 (default: [poll] interval, "
                          f"else {Config.interval_s:g})")
    _state_dir_option(run, "where the domain index state is kept")
    dump = commands.add_parser("dump", help="poll libvirt once and print it (no snmpd needed)")
    _poll_options(dump)
    _state_dir_option(dump, "the agent's state directory, read (never written) so that "
                            "the indexes shown are the agent's")
    dump.add_argument("--format", choices=FORMATS, default="table",
                      help="table, json (with state names beside the numbers) or oids, the "
                           "OID table the agent would serve (default: table)")
    dump.add_argument("--samples", type=_whole(1, 60), default=1, metavar="N",
                      help="poll N times, --gap apart, and print the last: 2 or more fill "
                           "cpu_util (default: 1)")
    dump.add_argument("--gap", type=_seconds, default=1.0, metavar="S",
                      help="seconds between samples (default: 1)")
    demo = commands.add_parser(
        "demo", help="run the agent on libvirt's test driver behind a private snmpd and walk it")
    demo.add_argument("--domains", type=_whole(1, 10000), default=12, metavar="N",
                      help="test-driver domains to generate, 1 to 10000 (default: 12)")
    check_config = commands.add_parser(
        "check-config", help="validate a configuration file: exit 0 with a summary, or 2 "
                             "with every error")
    check_config.add_argument(
        "file", type=Path, nargs="?", default=INSTALLED_CONFIG, metavar="FILE",
        help=f"the file alone, without flags or $LIBVIRT_DEFAULT_URI (default: "
             f"{INSTALLED_CONFIG})")
    check = commands.add_parser(
        "probe", help="check that snmpd's AgentX master is reachable (Open, Ping, Close)")
    check.add_argument("--agentx", default=DEFAULT_ADDRESS, metavar="ADDRESS",
                       help="master address: /path, unix:/path, tcp:HOST:PORT or default "
                            f"(default: {_DEFAULT_TEXT})")
    check.add_argument("--timeout", type=_seconds, default=5.0, metavar="S",
                       help="seconds to wait for each answer (default: 5)")
    mib = commands.add_parser(
        "compile-mib", help="compile LIBVIRT-EXT-MIB with pysmi into the JSON the agent "
                            "serves from (after editing the MIB)")
    mib.add_argument("--ietf-dir", required=True, type=Path, metavar="DIR",
                     help="directory with the IETF modules it imports (SNMPv2-SMI, SNMPv2-TC, "
                          "HCNUM-TC...); Debian ships none")
    mib.add_argument("--mib-dir", type=Path, default=PACKAGE_MIB.parent, metavar="DIR",
                     help="directory with LIBVIRT-EXT-MIB.txt (default: the packaged copy)")
    mib.add_argument("--out", type=Path, default=COMPILED_DIR, metavar="DIR",
                     help=f"where to write the JSON (default: {COMPILED_DIR})")
    return parser


log = logging.getLogger("agentx_virt")


def _seconds(text: str) -> float:
    """A finite number of seconds above 0 and at most a day (argparse type)."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number of seconds: {text!r}") from None
    if not math.isfinite(value) or not 0 < value <= 86400:
        raise argparse.ArgumentTypeError(f"must be more than 0 and at most 86400 seconds, "
                                         f"got {text}")
    return value


def _whole(low: int, high: int) -> Callable[[str], int]:
    """A whole number from ``low`` to ``high`` (argparse type)."""
    def check(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None
        if not low <= value <= high:
            raise argparse.ArgumentTypeError(f"must be from {low} to {high}, got {value}")
        return value
    return check


def _log_option(parser: argparse.ArgumentParser, default: object) -> None:
    parser.add_argument("--log-level", type=str.upper, default=default,
                        choices=["DEBUG", "INFO", "WARNING", "ERROR"],
                        help="DEBUG, INFO, WARNING or ERROR, any case (default: [agent] "
                             "log_level, else INFO; WARNING for dump)")


def _state_dir_option(parser: argparse.ArgumentParser, what: str) -> None:
    parser.add_argument("--state-dir", metavar="DIR",
                        help=f"{what} (default: [agent] state_dir, else {Config.state_dir})")


def _poll_options(parser: argparse.ArgumentParser) -> None:
    # Also accepted after the command (agentx-virt run --log-level info); there it must
    # not reset a level given before the command, hence SUPPRESS.
    _log_option(parser, argparse.SUPPRESS)
    parser.add_argument("--config", type=Path, metavar="FILE",
                        help="TOML configuration file; flags override it (default: none, "
                             "every setting at its default)")
    parser.add_argument("--uri", help="libvirt URI (default: $LIBVIRT_DEFAULT_URI, else "
                                      "qemu:///system)")
    parser.add_argument("--mibs", metavar="A,B,...",
                        help=f"the MIB modules to serve, of {', '.join(VIEWS)} (default: "
                             f"[mibs] serve, else {','.join(DEFAULT_MIBS)})")


def _config(args: argparse.Namespace) -> Config:
    overrides = {"uri": args.uri, "log_level": args.log_level, "mibs": args.mibs}
    for flag, field in (("agentx", "agentx"), ("interval", "interval_s"),
                        ("state_dir", "state_dir")):
        overrides[field] = getattr(args, flag, None)
    return load_config(args.config, overrides)


def _valid_config(args: argparse.Namespace) -> Config:
    """The configuration, with a URI libvirt can never open refused as part of it."""
    config = _config(args)
    problem = uri_problem(config.uri)
    if problem:
        raise ConfigError(f"libvirt URI {config.uri!r} ({_URI_FROM}): {problem}")
    return config


def _checked_config(args: argparse.Namespace, level: Optional[str] = None) -> Config:
    """``_valid_config``, and the log level set: --log-level, else ``level``, else the
    file's (INFO by default)."""
    config = _valid_config(args)
    logging.getLogger().setLevel(args.log_level or level or config.log_level)
    return config


_URI_FROM = "--uri, [libvirt] uri or $LIBVIRT_DEFAULT_URI"
INSTALLED_CONFIG = Path("/etc/agentx-virt/agentx-virt.toml")


def _run(args: argparse.Namespace) -> int:
    config = _checked_config(args)
    from agentx_virt.app.malloc import limit_arenas  # only the daemon process needs ctypes
    limit_arenas()
    reloader = Reloader(config, lambda: _valid_config(args))
    agent = Agent(config, reloader=reloader, systemd=Systemd())

    def request_stop(signum: int, _frame: object) -> None:
        log.info("signal %d: stopping", signum)
        agent.stop()

    signal.signal(signal.SIGTERM, request_stop)
    signal.signal(signal.SIGINT, request_stop)
    signal.signal(signal.SIGHUP, lambda _signum, _frame: reloader.request())
    return agent.run()


def _check_config(args: argparse.Namespace) -> int:
    """Every problem of the file (ConfigError from load), or one line saying what it sets."""
    config = load_config(args.file, environ={})
    print(f"{args.file}: OK: libvirt {config.uri}, AgentX {parse_address(config.agentx)}, every "
          f"{config.interval_s:g} s (domain timeout {config.domain_timeout_s:g} s), "
          f"{config.instances} reader(s) of {config.workers} worker(s), serving "
          f"{', '.join(config.mibs)}, {len(config.thresholds)} threshold(s), state in "
          f"{config.state_dir}")
    return 0


def _dump(args: argparse.Namespace) -> int:
    config = _checked_config(args, "WARNING")
    try:
        registry = DomainIndexRegistry.load(config.state_dir / STATE_FILE, read_only=True)
    except StateFileError as exc:
        log.warning("%s; showing fresh indexes", exc)
        registry = DomainIndexRegistry()
    sink = DumpSink(sys.stdout, args.format,
                    lambda snapshot: registry.index_domains(snapshot.domains, time.time()),
                    [(VIEWS[name], VIEWS[name].load()) for name in config.mibs])
    # The readers' intermediate snapshots are not printed: only the complete last one.
    snapshot = Poller(config, lambda _snapshot: None).poll_once(args.samples, args.gap)
    sink.publish(snapshot)
    return 0 if snapshot.host.libvirt_connected else 1


def _probe(args: argparse.Namespace) -> int:
    try:
        address = parse_address(args.agentx)
    except AddressError as exc:
        print(f"agentx-virt: {exc}", file=sys.stderr)
        return 2
    try:
        result = probe(address, args.timeout, ident=shipped_mib().root)
    except OSError as exc:
        hint = ("" if isinstance(exc, PermissionError) else
                "\n  (is snmpd running with 'master agentx', and is agentXSocket where the "
                "agent looks?)")
        print(f"agentx-virt: {unreachable(address, exc)}{hint}", file=sys.stderr)
        return 1
    except AgentXError as exc:
        print(f"agentx-virt: {exc}", file=sys.stderr)
        return 1
    print(f"AgentX master at {address} answered: session {result.session_id}, "
          f"ping round trip {result.ping_ms:.2f} ms")
    return 0


def _compile_mib(args: argparse.Namespace) -> int:
    for directory in (args.ietf_dir, args.mib_dir):
        if not directory.is_dir():
            print(f"agentx-virt: {directory} is not a directory", file=sys.stderr)
            return 2
    try:
        paths = write_compiled(compile_mib([args.mib_dir, args.ietf_dir]), args.out)
    except MibCompileError as exc:
        print(f"agentx-virt: {exc}", file=sys.stderr)
        return 1
    except OSError as exc:
        print(f"agentx-virt: cannot write the compiled MIB: {exc}", file=sys.stderr)
        return 1
    for path in paths:
        print(f"wrote {path}")
    return 0


def main(argv: Optional[list[str]] = None) -> int:
    args = _parser().parse_args(argv)
    logs.configure(args.log_level or "INFO")
    try:
        if args.command == "run":
            return _run(args)
        if args.command == "dump":
            return _dump(args)
        if args.command == "check-config":
            return _check_config(args)
    except ConfigError as exc:
        for problem in exc.problems:
            print(f"agentx-virt: configuration error: {problem}", file=sys.stderr)
        return 2
    if args.command == "demo":
        # Imported here: the demo's helpers (subprocess, a private snmpd) are not the
        # daemon's business and would only add to its memory.
        from agentx_virt.demo import run_demo
        return run_demo(args.domains)
    if args.command == "probe":
        return _probe(args)
    if args.command == "compile-mib":
        return _compile_mib(args)
    _parser().print_help(sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main())
