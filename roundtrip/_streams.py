"""A connection's byte stream: the one interface the connection code reads, writes and asks
through (plain TCP, TLS, and TLS inside a TLS proxy tunnel).

The streams differ in one question: whether bytes that arrived while the request is still
going out are the server's answer. On plain TCP every readable byte is. Under TLS the socket
also turns readable for records that carry no response (TLS 1.3 session tickets, sent after
the handshake at the server's leisure), so a TLS stream reads through its TLS layers without
waiting and keeps what it decrypted for the next ``recv_into``.
"""

from __future__ import annotations

import socket
import ssl
from functools import partial
from typing import TYPE_CHECKING, Optional, Protocol, Union

from . import _speedups

if TYPE_CHECKING:
    from _typeshed import ReadableBuffer

    from ._tls import TLSLayers

__all__ = ("Stream", "SocketStream", "TLSStream")

_shutdown = socket.socket.shutdown  # the plain-socket method, safe on TLS sockets from any thread
_PEEK_SIZE = 65536


class Stream(Protocol):
    """What a connection needs of its transport layer."""

    fd: int
    # The descriptor the compiled exchange may write and read directly (plain TCP on a socket
    # of the socket module's own class), or -1: everything else takes the general exchange.
    plain_fd: int

    @property
    def sock(self) -> socket.socket:
        """The socket whose descriptor the stream reads and writes (for timeouts and polling)."""

    def recv_into(self, view: memoryview) -> int:
        """Receive into ``view`` (waiting up to the socket's timeout); 0 at EOF."""

    def send(self, data: ReadableBuffer) -> int:
        """Send some of ``data``; returns how much the stream took."""

    def send_nowait(self, data: ReadableBuffer) -> int:
        """A first send, for a connection with no deadline: on a plain socket it takes what
        the socket buffer takes without blocking (and without releasing the GIL); elsewhere
        it is ``send``."""

    def settimeout(self, timeout: Optional[float]) -> None: ...

    def readable(self) -> bool:
        """Whether the descriptor is readable, hung up or in error now (no wait)."""

    def response_waiting(self) -> bool:
        """Whether the server has sent response bytes (or closed), without waiting."""

    def abort(self) -> None:
        """Wake a thread blocked on the stream (from any thread); it sees EOF or an error."""

    def close(self) -> None: ...

    def tls_version(self) -> Optional[str]:
        """The negotiated TLS version ("TLSv1.3"), or None on plain TCP."""


class _StreamBase:
    __slots__ = ("sock", "fd", "plain_fd", "_poll_readable")

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.fd = sock.fileno()
        self.plain_fd = -1
        self._poll_readable = _speedups.impl.poll_readable

    def settimeout(self, timeout: Optional[float]) -> None:
        self.sock.settimeout(timeout)

    def readable(self) -> bool:
        return self._poll_readable(self.fd)

    def abort(self) -> None:
        try:
            _shutdown(self.sock, socket.SHUT_RDWR)
        except OSError:
            pass

    def close(self) -> None:
        self.sock.close()

    def tls_version(self) -> Optional[str]:
        """The negotiated TLS version ("TLSv1.3"), or None on plain TCP."""
        return None


class SocketStream(_StreamBase):
    """Plain TCP: every readable byte is the server's. Reads and writes are the socket's own
    (C) methods, with no Python layer in between."""

    __slots__ = ("recv_into", "send", "send_nowait")

    def __init__(self, sock: socket.socket) -> None:
        super().__init__(sock)
        self.recv_into = sock.recv_into
        self.send = sock.send
        # A socket of the socket module's own class may be written without its wrapper; a
        # custom dial's subclass keeps its own send.
        plain = type(sock) is socket.socket
        self.send_nowait = partial(_speedups.impl.send_nowait, sock) if plain else sock.send
        if plain:
            self.plain_fd = self.fd

    # On plain TCP every readable byte is an answer.
    response_waiting = _StreamBase.readable


class TLSStream(_StreamBase):
    """TLS over the socket: an ``ssl.SSLSocket``, or the in-memory layers of TLS inside a
    proxy's TLS tunnel (anything with the socket's ``recv``/``recv_into``/``send``)."""

    __slots__ = ("_prefetched",)

    sock: Union[ssl.SSLSocket, TLSLayers]

    def __init__(self, sock: Union[ssl.SSLSocket, TLSLayers]) -> None:
        super().__init__(sock)
        self._prefetched: Optional[bytes] = None  # plaintext read by response_waiting

    def recv_into(self, view: memoryview) -> int:
        data = self._prefetched
        if data is None:
            return self.sock.recv_into(view)
        count = min(len(data), len(view))
        view[:count] = data[:count]
        # b"" (the server closed) is handed out as EOF once; the socket says EOF after that.
        self._prefetched = data[count:] or None
        return count

    def send(self, data: ReadableBuffer) -> int:
        return self.sock.send(data)

    send_nowait = send

    def tls_version(self) -> Optional[str]:
        return self.sock.version()

    def response_waiting(self) -> bool:
        if self._prefetched is not None:
            return True
        if not self._poll_readable(self.fd):
            return False
        sock = self.sock
        try:
            sock.settimeout(0.0)
            data = sock.recv(_PEEK_SIZE)
        except (ssl.SSLWantReadError, ssl.SSLWantWriteError, BlockingIOError):
            return False  # only records without application data (session tickets): no answer
        except OSError:
            return True  # broken: the response reader finds out
        finally:
            sock.settimeout(None)
        self._prefetched = data  # b"": the server closed
        return True
