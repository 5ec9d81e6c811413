"""The AgentX session on its own named thread, and how it ended."""

from __future__ import annotations

import logging
import threading
from typing import Optional

from agentx_virt.agentx.errors import SessionFatal
from agentx_virt.agentx.session import AgentXSession

log = logging.getLogger(__name__)


class SessionThread:
    """Runs an ``AgentXSession`` on a named thread and reports how it ended.

    The owner waits on ``ended``; when it is set and ``error`` is not None the
    session died (a refusal such as duplicateRegistration, or a bug) and the
    process should exit non-zero rather than live on without serving.
    """

    def __init__(self, session: AgentXSession, name: str = "agentx-session") -> None:
        self.session = session
        self.error: Optional[BaseException] = None
        self.ended = threading.Event()
        self.thread = threading.Thread(target=self._run, name=name, daemon=True)

    def start(self) -> SessionThread:
        self.thread.start()
        return self

    def _run(self) -> None:
        try:
            self.session.run()
        except SessionFatal as exc:
            self.error = exc
            log.critical("%s", exc)
        except BaseException as exc:
            self.error = exc
            log.critical("the AgentX session thread failed", exc_info=True)
        finally:
            self.ended.set()

    def stop(self, timeout: float = 10.0) -> None:
        """Send Close, end the thread and wait for it."""
        self.session.stop()
        self.thread.join(timeout)
        if self.thread.is_alive():
            raise RuntimeError(f"the AgentX session thread did not stop within {timeout:g} s")
