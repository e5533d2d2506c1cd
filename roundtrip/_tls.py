"""TLS on a dialed connection (Go's ``persistConn.addTLS``): the Transport's TLS settings, the
handshake with its trace events, timeout and errors, and TLS inside TLS for an https origin
behind an https proxy (Python's ``SSLSocket`` cannot wrap another ``SSLSocket``, so both
layers run over memory BIOs on one socket)."""

from __future__ import annotations

import selectors
import socket
import ssl
import time
from typing import TYPE_CHECKING, Callable, Optional, TypeVar

from ._errors import Error, TLSError, TLSHandshakeTimeout
from ._tcp import Abandoned, Post, ticks, wait_for

if TYPE_CHECKING:
    from _typeshed import ReadableBuffer, WriteableBuffer

    from ._options import Options

__all__ = ("tls_context", "start_tls", "TLSLayers", "add_tls_layer")

_READ_SIZE = 65536
_Layer = TypeVar("_Layer")


def tls_context(options: Options) -> ssl.SSLContext:
    """The Transport's ``ssl_context``, or the system's settings with verification on (made
    once per Transport, when first needed: loading the CA certificates takes a while)."""
    if options.ssl_context is not None:
        return options.ssl_context
    if options.default_tls is None:
        options.default_tls = ssl.create_default_context()
    return options.default_tls


def _timed_out() -> Error:
    return TLSHandshakeTimeout("net/http: TLS handshake timeout")


def _handshake(begin: Callable[[], _Layer], step: Callable[[_Layer, float], bool], timeout: Optional[float], post: Post, gone: Callable[[], bool]) -> _Layer:
    """One TLS handshake with its trace events, timeout and error mapping: ``begin()`` sets the
    layer up, ``step(layer, tick)`` advances the handshake waiting at most ``tick`` seconds and
    says whether it is done. Failures are ``TLSError`` (or ``TLSHandshakeTimeout``)."""
    post("tls_handshake_start")
    try:
        layer = begin()
    except (ssl.SSLError, ssl.CertificateError, ValueError) as exc:
        error = TLSError(f"tls: {exc}")
        post("tls_handshake_done", error)
        raise error from exc
    deadline = None if timeout is None else time.monotonic() + timeout
    try:
        for tick in ticks(deadline, gone, _timed_out):
            if step(layer, tick):
                break
    except Abandoned:
        raise
    except Error as exc:
        post("tls_handshake_done", exc)
        raise
    except (ssl.SSLError, ssl.CertificateError, OSError) as exc:
        error = TLSError(f"tls: {exc}")
        post("tls_handshake_done", error)
        raise error from exc
    post("tls_handshake_done", None)
    return layer


def _socket_step(tls: ssl.SSLSocket, tick: float) -> bool:
    try:
        tls.do_handshake()
        return True
    except ssl.SSLWantReadError:
        wait_for(tls, selectors.EVENT_READ, tick)
    except ssl.SSLWantWriteError:
        wait_for(tls, selectors.EVENT_WRITE, tick)
    return False


def start_tls(sock: socket.socket, options: Options, server_hostname: str, post: Post, gone: Callable[[], bool]) -> ssl.SSLSocket:
    """TLS over ``sock`` with the Transport's settings, handshake done within
    ``tls_handshake_timeout``. The socket is closed if this fails."""

    wrapped: list[ssl.SSLSocket] = []

    def begin() -> ssl.SSLSocket:
        tls = tls_context(options).wrap_socket(sock, server_hostname=server_hostname, do_handshake_on_connect=False)
        wrapped.append(tls)  # it owns the descriptor now
        tls.setblocking(False)
        return tls

    try:
        tls = _handshake(begin, _socket_step, options.tls_handshake_timeout, post, gone)
        tls.setblocking(True)
        return tls
    except BaseException:
        (wrapped[0] if wrapped else sock).close()
        raise


def _layer_step(layers: "TLSLayers", tick: float) -> bool:
    layers.settimeout(tick)
    try:
        layers.handshake()
        return True
    except socket.timeout:
        return False


def add_tls_layer(layers: "TLSLayers", options: Options, server_hostname: str, post: Post, gone: Callable[[], bool]) -> None:
    """A TLS handshake on a new innermost layer of ``layers``, as ``start_tls`` does one on a
    socket (the caller closes ``layers`` if this fails)."""

    def begin() -> TLSLayers:
        layers.add_layer(tls_context(options), server_hostname)
        return layers

    _handshake(begin, _layer_step, options.tls_handshake_timeout, post, gone)
    layers.settimeout(None)


class TLSLayers(socket.socket):
    """TLS layers done in memory (``ssl.SSLObject``) over one TCP socket: TLS to an https
    proxy, and TLS to the origin inside its CONNECT tunnel (an ``ssl.SSLSocket`` cannot wrap
    another). It owns the TCP descriptor, so the connection code's shutdown, peek and select
    work on it as on any socket; the timeout applies to each wait on the network.
    """

    def __init__(self, sock: socket.socket) -> None:
        super().__init__(sock.family, sock.type, sock.proto, fileno=sock.detach())
        self._layers: list[tuple[ssl.SSLObject, ssl.MemoryBIO, ssl.MemoryBIO]] = []
        self._unsent = bytearray()  # ciphertext for the network, kept across a timeout

    def add_layer(self, context: ssl.SSLContext, server_hostname: str) -> None:
        incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
        tls = context.wrap_bio(incoming, outgoing, server_hostname=server_hostname)
        self._layers.append((tls, incoming, outgoing))

    def handshake(self) -> None:
        """Advance the handshake of the innermost layer; raises ``socket.timeout`` when a wait
        times out, and may be called again after that."""
        level = len(self._layers) - 1
        tls, incoming, _ = self._layers[level]
        while True:
            try:
                tls.do_handshake()
            except ssl.SSLWantReadError:
                self._push(level)
                data = self._read(level - 1, _READ_SIZE)
                if not data:
                    raise ConnectionResetError("connection closed during the TLS handshake") from None
                incoming.write(data)
                continue
            self._push(level)
            self._flush()
            return

    def _push(self, level: int) -> None:
        """Move what ``level`` has to send down through the layers below it."""
        while level >= 0:
            data = self._layers[level][2].read()
            if not data:
                return
            if level == 0:
                self._unsent += data
            else:
                self._layers[level - 1][0].write(data)
            level -= 1

    def _flush(self) -> None:
        while self._unsent:
            sent = super().send(self._unsent)
            del self._unsent[:sent]

    def _read(self, level: int, size: int) -> bytes:
        """Plaintext of layer ``level`` (``-1``: the network); ``b""`` at the end."""
        if level < 0:
            self._flush()
            return super().recv(size)
        tls, incoming, _ = self._layers[level]
        while True:
            try:
                return tls.read(size)
            except ssl.SSLWantReadError:
                self._push(level)
                data = self._read(level - 1, _READ_SIZE)
                if data:
                    incoming.write(data)
                else:
                    incoming.write_eof()
            except (ssl.SSLZeroReturnError, ssl.SSLEOFError):
                return b""  # like SSLSocket's suppress_ragged_eofs

    def recv(self, bufsize: int, flags: int = 0) -> bytes:
        if flags:
            raise ValueError("flags are not supported on a TLS tunnel")
        return self._read(len(self._layers) - 1, bufsize)

    def recv_into(self, buffer: WriteableBuffer, nbytes: int = 0, flags: int = 0) -> int:
        view = memoryview(buffer).cast("B")
        data = self.recv(nbytes or len(view), flags)
        view[: len(data)] = data
        return len(data)

    def send(self, data: ReadableBuffer, flags: int = 0) -> int:
        """Encrypt all of ``data``. What the network does not take before a timeout stays
        queued and goes out before anything else is sent or received."""
        if flags:
            raise ValueError("flags are not supported on a TLS tunnel")
        self._flush()  # a timeout here accepts nothing: the caller may send ``data`` again
        level = len(self._layers) - 1
        self._layers[level][0].write(data)
        self._push(level)
        try:
            self._flush()
        except socket.timeout:
            pass  # accepted and queued
        return len(memoryview(data).cast("B"))

    def sendall(self, data: ReadableBuffer, flags: int = 0) -> None:
        self.send(data, flags)
        self._flush()

    def version(self) -> Optional[str]:
        """The TLS version of the innermost layer (the origin's), like ``SSLSocket.version``."""
        return self._layers[-1][0].version() if self._layers else None
