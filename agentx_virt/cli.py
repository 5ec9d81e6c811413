"""The ``agentx-virt`` command line."""

from __future__ import annotations

import argparse
import logging
import sys
from typing import Optional

from agentx_virt import __version__
from agentx_virt.agentx.address import DEFAULT_ADDRESS, parse_address
from agentx_virt.agentx.errors import AddressError, AgentXError
from agentx_virt.agentx.probe import probe

log = logging.getLogger("agentx_virt")


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
    return parser


def _probe(args: argparse.Namespace) -> int:
    try:
        address = parse_address(args.agentx)
    except AddressError as exc:
        print(f"agentx-virt: {exc}", file=sys.stderr)
        return 2
    try:
        result = probe(address, args.timeout)
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


def main(argv: Optional[list[str]] = None) -> int:
    args = _parser().parse_args(argv)
    logging.basicConfig(level=args.log_level, format="%(levelname)s %(name)s: %(message)s")
    if args.command == "probe":
        return _probe(args)
    _parser().print_help(sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main())
