"""One HTTP/1.1 connection and one exchange on it (Go's ``persistConn`` and its
``roundTrip``, ``writeLoop`` and ``readLoop``, folded into the calling thread).

Only this module and ``_dial`` touch sockets. Reads go into one buffer per connection with
``recv_into``; the sans-I/O parser turns the bytes into a response head.
"""

from __future__ import annotations

import socket
import ssl
import time
from typing import Any, Callable, Optional

from ._body import ChunkedBody, EmptyBody, FixedLengthBody, GzipBody, UntilCloseBody
from ._errors import Cancelled, DeadlineExceeded, Error, ProtocolError, ResponseHeaderTimeout, ServerDisconnected, Timeout
from ._events import CHUNKED, UNTIL_CLOSE
from ._headers import Headers
from ._models import Response

__all__ = ("Connection", "AttemptFailed", "exchange")

_BUFFER_SIZE = 65536
# Bodies up to this size go out in the same send as the head.
_COALESCE_LIMIT = 65536
_shutdown = socket.socket.shutdown  # the plain-socket method, safe on TLS sockets from any thread


class Connection:
    """A connected (possibly TLS) socket with its read buffer and per-attempt bookkeeping."""

    __slots__ = (
        "sock",
        "key",
        "buf",
        "view",
        "idle_since",
        "closed",
        "reused",
        "deadline",
        "deadline_error",
        "context",
        "cancel_handle",
        "trace",
        "bytes_written",
        "prefetched",
        "fd",
        "plain",
        "_poll_readable",
        "_send_nowait",
        "orphans",
        "_timeout_set",
    )

    def __init__(self, sock: socket.socket, key: str, impl: Any, orphans: Any = None) -> None:
        self.sock = sock
        self.fd = sock.fileno()
        # A plain TCP socket may be written without the socket module's wrapper (no TLS layer,
        # no subclass behaviour to respect).
        self.plain = type(sock) is socket.socket
        self._poll_readable = impl.poll_readable
        self._send_nowait = impl.send_nowait
        self.key = key
        self.buf = bytearray(_BUFFER_SIZE)
        self.view = memoryview(self.buf)
        self.idle_since = 0.0
        self.closed = False
        self.reused = False
        self.deadline: Optional[float] = None  # when the current phase must end
        self.deadline_error: type[Timeout] = DeadlineExceeded
        self.context: Any = None  # the Context of the request using the connection
        self.cancel_handle: Optional[int] = None
        self.trace: Any = None  # the Trace of the request using the connection
        self.bytes_written = 0
        self.prefetched: Optional[bytes] = None  # response bytes read early (see has_early_response)
        self.orphans = orphans  # where a finalized, unfinished response leaves this connection
        self._timeout_set = False

    def close(self) -> None:
        if not self.closed:
            self.closed = True
            self.view.release()
            self.sock.close()

    def abort(self) -> None:
        """Wake a thread blocked on this connection (cancel); it sees EOF or an error."""
        try:
            _shutdown(self.sock, socket.SHUT_RDWR)
        except OSError:
            pass

    def is_stale(self) -> bool:
        """Whether an idle connection must not be reused: the server closed it, or sent bytes
        nobody asked for (an unsolicited 408, say). One poll with no wait: readable, hung up or
        in error all mean stale."""
        return self._poll_readable(self.fd)

    def _set_timeout(self) -> None:
        remaining = self.deadline - time.monotonic()  # type: ignore[operator]
        if remaining <= 0:
            raise self.deadline_error(_timeout_message(self.deadline_error))
        self.sock.settimeout(remaining)
        self._timeout_set = True

    def clear_timeout(self) -> None:
        if self._timeout_set:
            self._timeout_set = False
            self.sock.settimeout(None)

    def recv_into(self, view: Any) -> int:
        """Receive into ``view``; 0 at EOF. Raises ``Cancelled``, the phase's ``Timeout``, or
        the socket's ``OSError``."""
        if self.prefetched is not None:
            return self._take_prefetched(view)
        try:
            if self.deadline is not None:
                self._set_timeout()
            return self._checked(self.sock.recv_into(view))
        except socket.timeout:
            raise self._timeout_error() from None
        except Error:
            raise
        except OSError:
            self._raise_if_cancelled()
            raise

    def send(self, data: Any) -> None:
        """Send all of ``data``, counting what reached the socket in ``bytes_written``."""
        sock = self.sock
        try:
            if self.plain and self.deadline is None:
                # Most heads fit the socket buffer: one send that cannot block, GIL kept.
                sent = self._send_nowait(sock, data)
            else:
                if self.deadline is not None:
                    self._set_timeout()
                sent = sock.send(data)
            self.bytes_written += sent
            if sent < len(data):
                view = memoryview(data).cast("B")
                while sent < len(view):
                    if self.deadline is not None:
                        self._set_timeout()
                    count = sock.send(view[sent:])
                    sent += count
                    self.bytes_written += count
        except socket.timeout:
            raise self._timeout_error() from None
        except Error:
            raise
        except OSError:
            self._raise_if_cancelled()
            raise

    def has_early_response(self) -> bool:
        """Whether the server has already answered (or closed) while the request body is still
        going out, without blocking. Over TLS the raw socket also turns readable for records
        that carry no response (TLS 1.3 session tickets), so the check reads through TLS and
        keeps what it got for the response reader."""
        if not self._poll_readable(self.fd):
            return False
        sock = self.sock
        if not isinstance(sock, ssl.SSLSocket):
            return True
        try:
            sock.settimeout(0.0)
            count = sock.recv_into(self.view)
        except (ssl.SSLWantReadError, ssl.SSLWantWriteError):
            return False  # only handshake records: no response yet
        except OSError:
            return True  # broken: let the response reader find out
        finally:
            sock.settimeout(None)
            self._timeout_set = False
        self.prefetched = bytes(self.view[:count])  # b"": the server closed
        return True

    def _take_prefetched(self, view: Any) -> int:
        data = self.prefetched
        assert data is not None
        count = min(len(data), len(view))
        view[:count] = data[:count]
        self.prefetched = data[count:] or None  # b"" (the server closed) is taken as EOF once
        return count

    def _checked(self, count: int) -> int:
        if count == 0:
            self._raise_if_cancelled()
        return count

    def _raise_if_cancelled(self) -> None:
        context = self.context
        if context is not None and context.cancelled:
            raise Cancelled("request cancelled")

    def _timeout_error(self) -> Error:
        self._raise_if_cancelled()
        return self.deadline_error(_timeout_message(self.deadline_error))


def _timeout_message(kind: type[Timeout]) -> str:
    if kind is ResponseHeaderTimeout:
        return "timeout awaiting response headers"
    return "context deadline exceeded"


class AttemptFailed(Exception):
    """One attempt failed; ``error`` is what the caller sees if it is not retried.

    ``retry_reason`` is Go's classification: ``"nothing_written"``, ``"server_closed_idle"``,
    ``"read_from_server_failed"``, or ``None`` when no retry rule applies.
    """

    def __init__(self, error: BaseException, retry_reason: Optional[str]) -> None:
        super().__init__(error)
        self.error = error
        self.retry_reason = retry_reason


def _tokens(headers: list[tuple[str, str]], name: str) -> list[str]:
    found: list[str] = []
    for field, value in headers:
        if field.lower() == name:
            found.extend(token.strip().lower() for token in value.split(","))
    return found


def _response_facts(http_version: str, fields: list[tuple[str, str]]) -> tuple[bool, bool]:
    """``(keeps_alive, gzipped)`` in one pass over the fields (Go's ``shouldClose`` and its
    gzip check).

    RFC 9112 §9.3: HTTP/1.1 persists unless "close"; HTTP/1.0 only with "keep-alive".
    """
    close = keep_alive = False
    encoding = None
    for field, value in fields:
        size = len(field)  # cheaper than lowering every name
        if size == 10 and field.lower() == "connection":
            tokens = [token.strip().lower() for token in value.split(",")]
            close = close or "close" in tokens
            keep_alive = keep_alive or "keep-alive" in tokens
        elif size == 16 and encoding is None and field.lower() == "content-encoding":
            encoding = value.strip().lower()  # Go: EqualFold(Header.Get(...), "gzip")
    return not close and (http_version == "HTTP/1.1" or keep_alive), encoding == "gzip"


def exchange(conn: Connection, prepared: Any, finish: Callable[[Connection, bool], None]) -> Response:
    """Write ``prepared`` on ``conn`` and read the response head.

    Returns the ``Response``; its body hands the connection to ``finish(conn, reusable)``
    when it ends or is closed. Raises ``AttemptFailed``.
    """
    context = prepared.context
    trace = prepared.trace
    conn.bytes_written = 0
    conn.trace = trace
    if context is not None:
        conn.cancel_handle = context._add_cancel_callback(conn.abort)
        if conn.cancel_handle is None:
            raise AttemptFailed(Cancelled("request cancelled"), None)
        conn.context = context
    conn.deadline = context.deadline if context is not None else None
    conn.deadline_error = DeadlineExceeded
    got_byte = [False]
    try:
        early = _write_request(conn, prepared, trace, got_byte)
        return _read_response(conn, prepared, trace, finish, got_byte, early)
    except AttemptFailed:
        raise
    except (Cancelled, Timeout) as exc:
        raise AttemptFailed(exc, None) from None
    except Error as exc:
        raise AttemptFailed(exc, None) from None
    except OSError as exc:
        raise AttemptFailed(*_classify_io_error(conn, exc, got_byte[0])) from None


def _classify_io_error(conn: Connection, exc: OSError, got_byte: bool) -> tuple[Error, Optional[str]]:
    if got_byte:
        return ProtocolError(f"connection broke while reading the response head: {exc}"), None
    if conn.bytes_written == 0:
        return ServerDisconnected(f"server closed the connection before the request was written: {exc}"), "nothing_written"
    return ServerDisconnected(f"server closed the connection before responding: {exc}"), "read_from_server_failed"


def _write_request(conn: Connection, prepared: Any, trace: Any, got_byte: list) -> Any:
    """Write head and body; return a response head that arrived early, or None."""
    body = prepared.body
    head = prepared.head
    if body is None or (body.data is not None and len(body.data) <= _COALESCE_LIMIT and not prepared.expect_continue):
        conn.send(head + body.data if body is not None and len(body.data) else head)
        if trace is not None:
            if trace.wrote_headers is not None:
                trace.wrote_headers()
            if trace.wrote_request is not None:
                trace.wrote_request(None)
        return None
    conn.send(head)
    if trace is not None and trace.wrote_headers is not None:
        trace.wrote_headers()
    early = None
    if prepared.expect_continue:
        early = _await_continue(conn, prepared, trace, got_byte)
        if early is not None and "close" in _tokens(early[0].headers, "connection"):
            # A final answer that closes: the body is never sent (Go skips it too).
            prepared.close_after = True
            return early
        # A final answer that keeps the connection: Go sends the body to keep it in step.
    try:
        for piece in body.pieces():
            if early is None and conn.has_early_response():
                # The server answered before the body was done: stop and read it (Go returns
                # that response, not a write error); the connection cannot be reused.
                prepared.close_after = True
                break
            conn.send(piece)
    except OSError as exc:
        if conn.context is not None and conn.context.cancelled:
            raise Cancelled("request cancelled") from None
        prepared.close_after = True
        if trace is not None and trace.wrote_request is not None:
            trace.wrote_request(exc)
        return early  # try to read a response the server may have sent before closing
    if trace is not None and trace.wrote_request is not None:
        trace.wrote_request(None)
    return early


def _await_continue(conn: Connection, prepared: Any, trace: Any, got_byte: list) -> Any:
    """``Expect: 100-continue`` (RFC 9110 §10.1.1): wait up to ``expect_continue_timeout`` for
    100 before sending the body. Returns ``None`` to send the body, or ``(head, parser)``
    of a final response that came instead."""
    if trace is not None and trace.wait_100_continue is not None:
        trace.wait_100_continue()
    timeout = prepared.options.expect_continue_timeout
    if timeout is None or timeout <= 0:
        return None
    saved = conn.deadline, conn.deadline_error
    limit = time.monotonic() + timeout
    if saved[0] is None or limit < saved[0]:
        conn.deadline, conn.deadline_error = limit, _ContinueTimeout
    try:
        parser = prepared.new_parser()
        head = _read_head(conn, parser, prepared, trace, got_byte, stop_at_continue=True)
    except _ContinueTimeout:
        return None  # no answer in time: send the body anyway
    finally:
        conn.deadline, conn.deadline_error = saved
        conn.clear_timeout()
    if head is None:
        return None  # 100 Continue
    return head, parser


class _ContinueTimeout(Timeout):
    pass


def _read_head(conn: Connection, parser: Any, prepared: Any, trace: Any, got_byte: list, stop_at_continue: bool = False) -> Any:
    view = conn.view
    while True:
        event = parser.next_event()
        if event is None:
            count = conn.recv_into(view)
            if count == 0:
                if not got_byte[0]:
                    reused_reason = "server_closed_idle" if conn.bytes_written else "nothing_written"
                    raise AttemptFailed(ServerDisconnected("server closed the connection before responding"), reused_reason)
                parser.feed_eof()
                continue
            if not got_byte[0]:
                got_byte[0] = True
                if trace is not None and trace.got_first_response_byte is not None:
                    trace.got_first_response_byte()
            parser.feed(view[:count])
            continue
        status = event.status_code
        if status < 200 and status != 101:
            if trace is not None:
                if trace.got_1xx_response is not None:
                    trace.got_1xx_response(status, Headers._from_list(event.headers))
                if status == 100 and stop_at_continue and trace.got_100_continue is not None:
                    trace.got_100_continue()
            if status == 100 and stop_at_continue:
                return None
            continue
        return event


def _read_response(conn: Connection, prepared: Any, trace: Any, finish: Callable[[Connection, bool], None], got_byte: list, early: Any) -> Response:
    options = prepared.options
    if early is not None:
        head, parser = early
    else:
        if options.response_header_timeout is not None:
            limit = time.monotonic() + options.response_header_timeout
            if conn.deadline is None or limit < conn.deadline:
                conn.deadline, conn.deadline_error = limit, ResponseHeaderTimeout
        parser = prepared.new_parser()
        try:
            head = _read_head(conn, parser, prepared, trace, got_byte)
        finally:
            conn.deadline = prepared.context.deadline if prepared.context is not None else None
            conn.deadline_error = DeadlineExceeded
            if conn.deadline is None:
                conn.clear_timeout()

    fields = head.headers
    keeps_alive, gzipped = _response_facts(head.http_version, fields)
    reusable = not prepared.close_after and head.status_code != 101 and keeps_alive
    length = head.body_length
    response = Response.__new__(Response)
    response.status_code = head.status_code
    response.reason = head.reason
    response.http_version = head.http_version
    response.headers = Headers._from_list(fields)
    response.request = prepared.request
    response.uncompressed = False
    response.trailers = Headers()
    response.closed = False

    def done(reusable: bool) -> None:
        finish(conn, reusable)

    if length == CHUNKED:
        body: Any = ChunkedBody(conn, done, parser, response.trailers, reusable)
        response.content_length = None
    else:
        buffered = parser.take_unparsed()
        if length == UNTIL_CLOSE:
            body = UntilCloseBody(conn, done, buffered)
            response.content_length = None
        elif length == 0:
            body = EmptyBody(conn, done)
            response.content_length = 0
            if prepared.method == "HEAD":
                response.content_length = _declared_length(fields)
            body._end(reusable and not buffered)
        else:
            body = FixedLengthBody(conn, done, length, buffered, reusable)
            response.content_length = length
    if gzipped and prepared.gzip_requested and length != 0:
        # Go's transparent gzip: the caller sees the decoded body and no encoding headers.
        body = GzipBody(body)
        for name in ("Content-Encoding", "Content-Length"):
            if name in response.headers:
                del response.headers[name]
        response.content_length = None
        response.uncompressed = True
    response._body = body
    return response


def _declared_length(fields: list[tuple[str, str]]) -> Optional[int]:
    for field, value in fields:
        if field.lower() == "content-length":
            try:
                return int(value.split(",")[0].strip())
            except ValueError:
                return None
    return None
