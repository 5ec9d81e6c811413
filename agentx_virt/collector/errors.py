"""The collector's errors. libvirtError never leaves the collector; it becomes one of these."""

from __future__ import annotations

import libvirt


class CollectorError(Exception):
    """Base of the collector's errors."""


class LibvirtUnavailable(CollectorError):
    """libvirt cannot be reached (daemon down, connection closed, permission denied)."""


class DomainGone(CollectorError):
    """The domain was undefined or stopped while we asked about it."""


class NotAvailable(CollectorError):
    """This statistic is not available for this domain or driver (unsupported, inactive
    domain, no guest agent, read-only connection). Not an error to report each poll."""


class CallFailed(CollectorError):
    """libvirt refused a call for another reason; the message carries libvirt's."""


_GONE = {"VIR_ERR_NO_DOMAIN"}
_NOT_AVAILABLE = {
    "VIR_ERR_NO_SUPPORT", "VIR_ERR_OPERATION_INVALID", "VIR_ERR_OPERATION_UNSUPPORTED",
    "VIR_ERR_ARGUMENT_UNSUPPORTED", "VIR_ERR_AGENT_UNRESPONSIVE", "VIR_ERR_AGENT_UNSYNCED",
    "VIR_ERR_OPERATION_DENIED", "VIR_ERR_NO_DOMAIN_METADATA", "VIR_ERR_INVALID_ARG",
}
_UNAVAILABLE = {"VIR_ERR_SYSTEM_ERROR", "VIR_ERR_RPC", "VIR_ERR_NO_CONNECT",
                "VIR_ERR_AUTH_FAILED", "VIR_ERR_AUTH_CANCELLED", "VIR_ERR_INVALID_CONN"}


def _codes(names: set[str]) -> frozenset[int]:
    return frozenset(getattr(libvirt, name) for name in names if hasattr(libvirt, name))


GONE_CODES = _codes(_GONE)
NOT_AVAILABLE_CODES = _codes(_NOT_AVAILABLE)
UNAVAILABLE_CODES = _codes(_UNAVAILABLE)


def translate(exc: libvirt.libvirtError, what: str) -> CollectorError:
    """Map a libvirtError raised by ``what`` (e.g. "blockStats(vda) of web-1") to our error."""
    code = exc.get_error_code()
    message = f"{what}: {exc.get_error_message() or exc}"
    if code in GONE_CODES:
        return DomainGone(message)
    if code in NOT_AVAILABLE_CODES:
        return NotAvailable(message)
    if code in UNAVAILABLE_CODES:
        return LibvirtUnavailable(message)
    return CallFailed(f"{message} (libvirt error {code})")
