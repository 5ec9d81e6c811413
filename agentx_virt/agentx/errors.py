"""The AgentX layer's exceptions, split by whose fault they are (ours, the master's, the user's)."""

from __future__ import annotations

from typing import Optional


class AgentXError(Exception):
    """Base of every error the AgentX layer raises."""


class ProtocolError(AgentXError):
    """The peer sent bytes that are not valid AgentX."""


class FramingError(ProtocolError):
    """The 20-byte header is unusable (bad version, type or length): the stream cannot be resynced.

    The session must be closed (Close reason parseError) and reopened.
    """


class MalformedPDU(ProtocolError):
    """One PDU was framed correctly but its payload could not be decoded.

    The stream stays in sync; the session answers this PDU with a parseError Response.
    """

    def __init__(
        self,
        message: str,
        *,
        pdu_type: int,
        session_id: int,
        transaction_id: int,
        packet_id: int,
        big_endian: bool,
    ) -> None:
        super().__init__(message)
        self.pdu_type = pdu_type
        self.session_id = session_id
        self.transaction_id = transaction_id
        self.packet_id = packet_id
        self.big_endian = big_endian


class EncodeError(AgentXError):
    """A PDU or value we were asked to send cannot be encoded (a bug or bad data on our side).

    Attributes:
        varbind_index: 1-based position of the offending VarBind, when one is to blame.
    """

    def __init__(self, message: str, varbind_index: Optional[int] = None) -> None:
        super().__init__(message)
        self.varbind_index = varbind_index


class AddressError(AgentXError, ValueError):
    """The configured master address cannot be understood (a configuration mistake)."""


class SessionFatal(AgentXError):
    """The master refused us in a way retrying cannot fix (e.g. duplicate registration)."""


class ConnectionLost(AgentXError):
    """The session to the master ended; the driver reconnects."""
