"""A connection factory whose connections note every call the collector makes on them.

Passed as ``connect=`` to the poller (the collector takes its connections from a
factory), so tests see which calls were made without patching ``Connection``.
"""

from __future__ import annotations

from typing import Any, Callable, Optional

from agentx_virt.collector.connection import Connection


class RecordedCalls:
    """Opens ``Connection``s that log (connection name, what) for each call."""

    def __init__(self) -> None:
        self.log: list[tuple[str, str]] = []
        self._watched: dict[str, list[str]] = {}

    def watch(self, api: str) -> list[str]:
        """The domains ``api`` is called for, in call order, from now on (a list that
        fills as the calls are made; a bulk call names its count: "2 domains")."""
        return self._watched.setdefault(api, [])

    def _note(self, connection: str, what: str) -> None:
        self.log.append((connection, what))
        api, _, subject = what.partition(" of ")
        if subject and api in self._watched:
            self._watched[api].append(subject)

    def __call__(self, uri: str, name: str, read_only: bool = True,
                 on_close: Optional[Callable[[Connection, str], None]] = None) -> Connection:
        note = self._note

        class Recording(Connection):
            def call(self, what: str, function: Callable[..., Any], *args: Any) -> Any:
                note(self.name, what)
                return super().call(what, function, *args)

        return Recording(uri, name, read_only, on_close)
