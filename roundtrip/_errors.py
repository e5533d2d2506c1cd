"""Every exception class roundtrip raises.

Every error raised by a round trip carries ``conn_reused`` and ``bytes_written`` so that a
caller can decide for itself whether a manual retry is safe.
"""

from __future__ import annotations

__all__ = (
    "Error",
    "InvalidRequest",
    "ConnectError",
    "TLSError",
    "ProxyError",
    "Timeout",
    "ConnectTimeout",
    "TLSHandshakeTimeout",
    "ResponseHeaderTimeout",
    "DeadlineExceeded",
    "Cancelled",
    "ProtocolError",
    "IncompleteBody",
    "HeaderTooLarge",
    "ServerDisconnected",
    "UnrewindableBody",
    "ResponseClosed",
    "TransportClosed",
    "SkipAltProtocol",
)


class Error(Exception):
    """Base class of every roundtrip error.

    Attributes:
        conn_reused: the attempt that failed ran on a connection taken from the idle pool.
        bytes_written: request bytes that reached the socket in the failed attempt.
    """

    conn_reused: bool = False
    bytes_written: int = 0


class InvalidRequest(Error, ValueError):
    """The request failed validation before any I/O: its method, a header name or value,
    its URL (scheme, host, port, control characters) or its body; nothing was dialed or sent.

    ``part`` says what was wrong: ``"method"``, ``"header"``, ``"url"``, ``"scheme"`` or
    ``"body"`` (adapters map the error by it, never by its message).
    """

    PARTS = ("method", "header", "url", "scheme", "body")

    def __init__(self, message: str, part: str) -> None:
        if part not in self.PARTS:
            raise ValueError(f"part must be one of {', '.join(self.PARTS)}, not {part!r}")
        super().__init__(message)
        self.part = part

    def __reduce__(self) -> tuple[type[InvalidRequest], tuple[str, str], dict[str, object]]:
        return (type(self), (str(self), self.part), self.__dict__)


class ConnectError(Error):
    """DNS resolution or the TCP connect failed."""


class TLSError(ConnectError):
    """The TLS handshake or certificate verification failed."""


class ProxyError(ConnectError):
    """The proxy refused or broke the CONNECT or SOCKS handshake."""


class Timeout(Error, TimeoutError):
    """Base class of the timeouts. Note that this is an ``OSError`` too."""


class ConnectTimeout(Timeout):
    """``connect_timeout`` elapsed while connecting."""


class TLSHandshakeTimeout(Timeout):
    """``tls_handshake_timeout`` elapsed during the TLS handshake."""


class ResponseHeaderTimeout(Timeout):
    """``response_header_timeout`` elapsed between writing the request and the response head."""


class DeadlineExceeded(Timeout):
    """The request's ``Context`` deadline passed."""


class Cancelled(Error):
    """The request's ``Context`` was cancelled."""


class ProtocolError(Error):
    """The response was malformed: status line, headers, framing, chunking or gzip."""


class IncompleteBody(ProtocolError):
    """The body ended before its Content-Length or before the last chunk."""


class HeaderTooLarge(ProtocolError):
    """The response head exceeded ``max_response_header_bytes``."""


class ServerDisconnected(Error):
    """The server closed the connection before any response byte, and no retry was allowed."""


class UnrewindableBody(Error):
    """A retry needed the request body again, and the request has no ``get_body``."""


class ResponseClosed(Error):
    """The response body was read after the response was closed."""


class TransportClosed(Error):
    """``round_trip`` was called after ``Transport.close()``."""


class SkipAltProtocol(Exception):
    """Raised by a registered round tripper to hand the request back to the transport."""
