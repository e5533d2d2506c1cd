"""The Transport's options as one typed value that every part of a round trip reads."""

from __future__ import annotations

from typing import TYPE_CHECKING, Callable, Optional

if TYPE_CHECKING:
    import socket
    import ssl

__all__ = ("Options", "check_timeout", "Dial")

# A custom dial: ``dial(host, port, timeout) -> socket.socket`` (Transport's ``dial`` option).
Dial = Callable[[str, int, Optional[float]], "socket.socket"]


def check_timeout(name: str, value: Optional[float]) -> Optional[float]:
    """``value`` if it is a non-negative number or None; ``ValueError`` naming ``name`` otherwise."""
    if value is not None and not (isinstance(value, (int, float)) and value >= 0):
        raise ValueError(f"{name} must be a non-negative number or None")
    return value


class Options:
    """What a Transport was configured with, for preparation, dialing and the exchange."""

    __slots__ = (
        "connect_timeout",
        "tls_handshake_timeout",
        "response_header_timeout",
        "expect_continue_timeout",
        "max_response_header_bytes",
        "disable_keep_alives",
        "disable_compression",
        "ssl_context",
        "dial",
        "default_tls",
    )

    def __init__(
        self,
        *,
        connect_timeout: Optional[float],
        tls_handshake_timeout: Optional[float],
        response_header_timeout: Optional[float],
        expect_continue_timeout: Optional[float],
        max_response_header_bytes: int,
        disable_keep_alives: bool,
        disable_compression: bool,
        ssl_context: Optional["ssl.SSLContext"],
        dial: Optional[Dial],
    ) -> None:
        if max_response_header_bytes < 1:
            raise ValueError("max_response_header_bytes must be positive")
        self.connect_timeout = check_timeout("connect_timeout", connect_timeout)
        self.tls_handshake_timeout = check_timeout("tls_handshake_timeout", tls_handshake_timeout)
        self.response_header_timeout = check_timeout("response_header_timeout", response_header_timeout)
        self.expect_continue_timeout = check_timeout("expect_continue_timeout", expect_continue_timeout)
        self.max_response_header_bytes = max_response_header_bytes
        self.disable_keep_alives = bool(disable_keep_alives)
        self.disable_compression = bool(disable_compression)
        self.ssl_context = ssl_context
        self.dial = dial
        # The system's TLS settings, made by the TLS layer when first needed (loading the CA
        # certificates takes a while).
        self.default_tls: Optional["ssl.SSLContext"] = None
