"""TLS inside TLS on an event loop that cannot layer it well: asyncio before Python 3.11 starts
TLS only on a plain TCP transport, and on 3.11 and 3.12 a TLS transport over another fails with
a ``TypeError`` of its own when its handshake or connection fails (its ``_force_close`` calls
``SSLProtocol._abort`` with an argument it does not take). There the origin's TLS inside an
https proxy's runs here in memory (``ssl.SSLObject`` over ``MemoryBIO``, as ``_tls.TLSLayers``
does on a thread), between the proxy's TLS transport and the connection's protocol."""

from __future__ import annotations

import asyncio
import ssl
import sys
from typing import TYPE_CHECKING, Any, Optional

if TYPE_CHECKING:
    from ._async_connection import AsyncConnection

__all__ = ("MemoryTLS", "loop_layers_tls")

_READ_SIZE = 65536

# Tests set this to run the in-memory layer on loops that could do without it.
_FORCE_MEMORY_TLS = False


def loop_layers_tls(loop: asyncio.AbstractEventLoop, transport: asyncio.BaseTransport) -> bool:
    """Whether ``loop.start_tls`` can start TLS over ``transport`` (itself a TLS transport)."""
    if _FORCE_MEMORY_TLS:
        return False
    if isinstance(loop, asyncio.BaseEventLoop):
        return sys.version_info >= (3, 13) and bool(getattr(transport, "_start_tls_compatible", False))
    return True  # uvloop layers TLS over its TLS transports


class MemoryTLS(asyncio.Protocol):
    """The protocol of the outer (proxy's) TLS transport, and the transport of the connection:
    it decrypts what arrives for the connection and encrypts what the connection writes."""

    def __init__(self, outer: asyncio.Transport, conn: AsyncConnection, context: ssl.SSLContext, server_hostname: str) -> None:
        self._outer = outer
        self._conn = conn
        self._context = context
        self._incoming = ssl.MemoryBIO()
        self._outgoing = ssl.MemoryBIO()
        self._tls = context.wrap_bio(self._incoming, self._outgoing, server_hostname=server_hostname)
        self._done: asyncio.Future[None] = conn.loop.create_future()
        self._open = False  # the handshake is done: bytes go to the connection

    async def handshake(self) -> None:
        """Run the handshake over the outer transport (the caller bounds it in time)."""
        self._outer.set_protocol(self)
        self._step()
        await self._done

    def _step(self) -> None:
        try:
            self._tls.do_handshake()
        except ssl.SSLWantReadError:
            self._flush()
            return
        except (ssl.SSLError, ssl.CertificateError) as exc:
            if not self._done.done():
                self._done.set_exception(exc)
            return
        self._flush()
        self._open = True
        if not self._done.done():
            self._done.set_result(None)
        self._deliver()  # application data may have come with the end of the handshake

    def _flush(self) -> None:
        data = self._outgoing.read()
        if data and not self._outer.is_closing():
            self._outer.write(data)

    def _deliver(self) -> None:
        conn = self._conn
        while True:
            try:
                data = self._tls.read(_READ_SIZE)
            except ssl.SSLWantReadError:
                return
            except (ssl.SSLZeroReturnError, ssl.SSLEOFError):
                conn.eof_received()
                return
            except ssl.SSLError as exc:
                conn.connection_lost(exc)
                self._outer.abort()
                return
            if not data:
                conn.eof_received()
                return
            view = conn.get_buffer(len(data))
            view[: len(data)] = data
            conn.buffer_updated(len(data))

    # -- the outer transport's protocol ------------------------------------------------------

    def data_received(self, data: bytes) -> None:
        self._incoming.write(data)
        if self._open:
            self._deliver()
        else:
            self._step()

    def eof_received(self) -> bool:
        self._incoming.write_eof()
        if self._open:
            self._deliver()
        elif not self._done.done():
            self._done.set_exception(ConnectionResetError("connection closed during the TLS handshake"))
        return False

    def connection_lost(self, exc: Optional[Exception]) -> None:
        if not self._done.done():
            self._done.set_exception(exc or ConnectionResetError("connection closed during the TLS handshake"))
        self._conn.connection_lost(exc)

    def pause_writing(self) -> None:
        self._conn.pause_writing()

    def resume_writing(self) -> None:
        self._conn.resume_writing()

    # -- the connection's transport ----------------------------------------------------------

    def write(self, data: Any) -> None:
        self._tls.write(data)
        self._flush()

    def is_closing(self) -> bool:
        return self._outer.is_closing()

    def close(self) -> None:
        self._outer.close()

    def abort(self) -> None:
        self._outer.abort()

    def pause_reading(self) -> None:
        self._outer.pause_reading()

    def resume_reading(self) -> None:
        self._outer.resume_reading()

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        if name == "ssl_object":
            return self._tls
        if name == "sslcontext":
            return self._context
        return self._outer.get_extra_info(name, default)
