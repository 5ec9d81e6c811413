"""The agent on a thread, for the demo (the tests and benchmarks use it too)."""

from __future__ import annotations

import threading
import time
from typing import Optional

from agentx_virt.app.daemon import Agent


class AgentThread:
    """Runs ``agent.run()`` on a thread (the demo, tests and benchmarks use it)."""

    def __init__(self, agent: Agent) -> None:
        self.agent = agent
        self.exit_code: Optional[int] = None
        self.thread = threading.Thread(target=self._run, name="agent", daemon=True)

    def _run(self) -> None:
        self.exit_code = self.agent.run()

    def start(self) -> AgentThread:
        self.thread.start()
        return self

    def wait_ready(self, timeout: float) -> bool:
        """True once every domain has been polled and snmpd has the registration."""
        deadline = time.monotonic() + timeout
        if not self.agent.publisher.all_polled.wait(timeout):
            return False
        while self.agent.session is None and time.monotonic() < deadline:
            time.sleep(0.01)
        session = self.agent.session
        return session is not None and session.serving.wait(max(0.0, deadline - time.monotonic()))

    def stop(self, timeout: float = 20.0) -> Optional[int]:
        """Stop the agent and wait for it; its exit code (None if it did not finish)."""
        self.agent.stop()
        self.thread.join(timeout)
        return self.exit_code

    def __enter__(self) -> AgentThread:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
