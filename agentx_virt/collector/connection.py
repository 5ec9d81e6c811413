"""Opening libvirt the way its own event example does: event loop first, read-only,
keepalive, close callback."""

from __future__ import annotations

import logging
import threading
import time
from typing import Any, Callable, Optional, Protocol
from urllib.parse import urlsplit

import libvirt

from agentx_virt.collector.errors import LibvirtUnavailable, translate
from agentx_virt.collector.guard import current_task

log = logging.getLogger(__name__)

KEEPALIVE_INTERVAL_S = 5
KEEPALIVE_COUNT = 3

_CLOSE_REASONS = {0: "error", 1: "end of file", 2: "keepalive timeout", 3: "client request"}

_loop_lock = threading.Lock()
_loop_thread: Optional[threading.Thread] = None


def _log_libvirt_error(_context: object, error: Any) -> None:
    # libvirt prints every error to stderr unless a handler is set; the collector
    # reports what matters through its own errors, so this only goes to DEBUG.
    log.debug("libvirt: %s", error[2] if isinstance(error, (list, tuple)) else error)


def start_event_loop() -> None:
    """Register libvirt's default event loop and run it on the thread "libvirt-events".

    Must run before the first connection is opened (keepalive and events need it);
    later calls do nothing.
    """
    global _loop_thread
    with _loop_lock:
        if _loop_thread is not None:
            return
        libvirt.registerErrorHandler(_log_libvirt_error, None)
        libvirt.virEventRegisterDefaultImpl()

        def run() -> None:
            while True:
                libvirt.virEventRunDefaultImpl()

        _loop_thread = threading.Thread(target=run, name="libvirt-events", daemon=True)
        _loop_thread.start()


class ConnectionFactory(Protocol):
    """What opens a libvirt connection for the collector (``Connection`` itself); the
    poller, its readers and the event watcher take one, so tests and tools can wrap it."""

    def __call__(self, uri: str, name: str, read_only: bool = True,
                 on_close: Optional[Callable[[Connection, str], None]] = None) -> Connection:
        ...


def uri_problem(uri: str) -> Optional[str]:
    """Why libvirt can never open ``uri`` (it cannot parse it, or has no driver for it),
    or None: it opened, or failed in a way worth retrying (a daemon that is not up)."""
    start_event_loop()
    try:
        libvirt.openReadOnly(uri).close()
    except libvirt.libvirtError as exc:
        message = exc.get_error_message() or str(exc)
        if exc.get_error_domain() == getattr(libvirt, "VIR_FROM_URI", 45):
            return f"libvirt cannot parse it: {message}"
        if exc.get_error_code() == libvirt.VIR_ERR_NO_CONNECT and \
                "no connection driver" in message:
            return f"libvirt has no driver for it: {message}"
    return None


def is_local(uri: str) -> bool:
    """Whether libvirt at ``uri`` runs on this host (its devices are this host's)."""
    host = urlsplit(uri).hostname
    return host in (None, "", "localhost", "127.0.0.1", "::1")


class Connection:
    """One libvirt connection; ``alive`` turns False when libvirt reports it closed."""

    def __init__(self, uri: str, name: str, read_only: bool = True,
                 on_close: Optional[Callable[[Connection, str], None]] = None) -> None:
        self.uri = uri
        self.local = is_local(uri)   # its domains' devices are this host's
        self.name = name
        self.domains: dict[str, libvirt.virDomain] = {}   # UUID -> handle on this connection
        self._on_close = on_close
        self._closed = threading.Event()
        self._closing = threading.Event()
        start_event_loop()
        try:
            conn = libvirt.openReadOnly(uri) if read_only else libvirt.open(uri)
        except libvirt.libvirtError as exc:
            raise LibvirtUnavailable(f"cannot open libvirt at {uri}: "
                                     f"{exc.get_error_message() or exc}") from None
        if conn is None:  # older bindings returned None instead of raising
            raise LibvirtUnavailable(f"cannot open libvirt at {uri}")
        self.conn: libvirt.virConnect = conn
        try:
            conn.setKeepAlive(KEEPALIVE_INTERVAL_S, KEEPALIVE_COUNT)
        except libvirt.libvirtError:
            pass  # local drivers (test://, qemu:///session in-process) have no keepalive
        try:
            conn.registerCloseCallback(self._closed_by_libvirt, None)
        except libvirt.libvirtError:
            pass  # drivers without a remote connection never close on their own

    def _closed_by_libvirt(self, _conn: object, reason: int, _opaque: object) -> None:
        # Runs on the libvirt-events thread: only record and hand on.
        if self._closing.is_set():
            return
        text = _CLOSE_REASONS.get(reason, f"reason {reason}")
        self._closed.set()
        if self._on_close is not None:
            self._on_close(self, text)

    @property
    def alive(self) -> bool:
        if self._closed.is_set():
            return False
        try:
            return bool(self.conn.isAlive())
        except libvirt.libvirtError:
            return False

    def domain(self, uuid: str) -> libvirt.virDomain:
        """This connection's handle for the domain (looked up once)."""
        dom = self.domains.get(uuid)
        if dom is None:
            dom = self.call(f"lookup of {uuid}", self.conn.lookupByUUIDString, uuid)
            self.domains[uuid] = dom
        return dom

    def forget(self, uuid: str) -> None:
        self.domains.pop(uuid, None)

    def call(self, what: str, function: Callable[..., Any], *args: Any) -> Any:
        """Run ``function(*args)``; a libvirtError comes back as the collector's own error.

        On a guard worker the call is timed on its task, so that only a call that is
        itself stuck past the deadline gets the task abandoned.
        """
        task = current_task()
        if task is not None:
            task.call_what, task.call_started = what, time.monotonic()
        try:
            return function(*args)
        except libvirt.libvirtError as exc:
            raise translate(exc, what) from None
        finally:
            if task is not None:
                task.call_started = None

    def close(self) -> None:
        if self._closing.is_set():
            return
        self._closing.set()       # `alive` must not touch a closed handle
        self._closed.set()
        try:
            self.conn.unregisterCloseCallback()
        except libvirt.libvirtError:
            pass
        try:
            self.conn.close()
        except libvirt.libvirtError as exc:
            log.debug("closing %s: %s", self.name, exc)
