"""The ``agentx-virt`` command line."""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path
from typing import Optional

from agentx_virt import __version__
from agentx_virt.agentx.address import DEFAULT_ADDRESS, parse_address
from agentx_virt.agentx.errors import AddressError, AgentXError
from agentx_virt.agentx.probe import probe
from agentx_virt.mib.compile import (
    COMPILED_DIR,
    PACKAGE_MIB,
    MibCompileError,
    compile_mib,
    write_compiled,
)
from agentx_virt.mib.model import shipped_mib


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="agentx-virt",
        description="AgentX subagent serving libvirt domain statistics through snmpd.")
    parser.add_argument("--version", action="version", version=f"agentx-virt {__version__}")
    parser.add_argument("--log-level", default="INFO",
                        choices=["DEBUG", "INFO", "WARNING", "ERROR"])
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    check = commands.add_parser(
        "probe", help="check that snmpd's AgentX master is reachable (Open, Ping, Close)")
    check.add_argument("--agentx", default=DEFAULT_ADDRESS, metavar="ADDRESS",
                       help="master address: /path, unix:/path or tcp:HOST:PORT "
                            f"(default {DEFAULT_ADDRESS})")
    check.add_argument("--timeout", type=float, default=5.0, metavar="S")
    mib = commands.add_parser(
        "compile-mib", help="compile LIBVIRT-EXT-MIB with pysmi into the JSON served from")
    mib.add_argument("--ietf-dir", required=True, type=Path, metavar="DIR",
                     help="directory with the IETF modules it imports (SNMPv2-SMI, SNMPv2-TC, "
                          "HCNUM-TC...); Debian ships none")
    mib.add_argument("--mib-dir", type=Path, default=PACKAGE_MIB.parent, metavar="DIR",
                     help="directory with LIBVIRT-EXT-MIB.txt (default: the packaged copy)")
    mib.add_argument("--out", type=Path, default=COMPILED_DIR, metavar="DIR",
                     help=f"where to write the JSON (default: {COMPILED_DIR})")
    return parser


def _probe(args: argparse.Namespace) -> int:
    try:
        address = parse_address(args.agentx)
    except AddressError as exc:
        print(f"agentx-virt: {exc}", file=sys.stderr)
        return 2
    try:
        result = probe(address, args.timeout, ident=shipped_mib().root)
    except OSError as exc:
        print(f"agentx-virt: cannot reach the AgentX master at {address}: {exc}\n"
              "  (is snmpd running with 'master agentx', and does agentXSocket/agentXPerms "
              "let this user in?)", file=sys.stderr)
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
    logging.basicConfig(level=args.log_level, format="%(levelname)s %(name)s: %(message)s")
    if args.command == "probe":
        return _probe(args)
    if args.command == "compile-mib":
        return _compile_mib(args)
    _parser().print_help(sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main())
