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
from typing import Any, Optional, Protocol

from . import _speedups

__all__ = ("Stream", "SocketStream", "TLSStream")

_shutdown = socket.socket.shutdown  # the plain-socket method, safe on TLS sockets from any thread
_PEEK_SIZE = 65536


class Stream(Protocol):
    """What a connection needs of its transport layer."""

    #: The socket whose descriptor the stream reads and writes (for timeouts and polling).
    sock: socket.socket
    fd: int

    def recv_into(self, view: Any) -> int:
        """Receive into ``view`` (waiting up to the socket's timeout); 0 at EOF."""

    def send(self, data: Any) -> int:
        """Send some of ``data``; returns how much the stream took."""

    def send_nowait(self, data: Any) -> int:
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


class SocketStream:
    """Plain TCP: every readable byte is the server's."""

    __slots__ = ("sock", "fd", "plain", "_poll_readable", "_send_nowait")

    def __init__(self, sock: socket.socket) -> None:
        impl = _speedups.impl
        self.sock = sock
        self.fd = sock.fileno()
        # A socket of the socket module's own class may be written without its wrapper; a
        # custom dial's subclass keeps its own send.
        self.plain = type(sock) is socket.socket
        self._poll_readable = impl.poll_readable
        self._send_nowait = impl.send_nowait

    def recv_into(self, view: Any) -> int:
        return self.sock.recv_into(view)

    def send(self, data: Any) -> int:
        return self.sock.send(data)

    def send_nowait(self, data: Any) -> int:
        if not self.plain:
            return self.sock.send(data)
        return self._send_nowait(self.sock, data)  # type: ignore[no-any-return]

    def settimeout(self, timeout: Optional[float]) -> None:
        self.sock.settimeout(timeout)

    def readable(self) -> bool:
        return self._poll_readable(self.fd)  # type: ignore[no-any-return]

    response_waiting = readable

    def abort(self) -> None:
        try:
            _shutdown(self.sock, socket.SHUT_RDWR)
        except OSError:
            pass

    def close(self) -> None:
        self.sock.close()


class TLSStream(SocketStream):
    """TLS over the socket: an ``ssl.SSLSocket``, or the in-memory layers of TLS inside a
    proxy's TLS tunnel (anything with the socket's ``recv``/``recv_into``/``send``)."""

    __slots__ = ("_prefetched",)

    def __init__(self, sock: socket.socket) -> None:
        super().__init__(sock)
        self.plain = False
        self._prefetched: Optional[bytes] = None  # plaintext read by response_waiting

    def recv_into(self, view: Any) -> int:
        data = self._prefetched
        if data is None:
            return self.sock.recv_into(view)
        count = min(len(data), len(view))
        view[:count] = data[:count]
        # b"" (the server closed) is handed out as EOF once; the socket says EOF after that.
        self._prefetched = data[count:] or None
        return count

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
