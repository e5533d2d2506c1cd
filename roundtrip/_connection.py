"""One HTTP/1.1 connection and one exchange on it (Go's ``persistConn`` and its
``roundTrip``, ``writeLoop`` and ``readLoop``, folded into the calling thread).

The connection reads, writes and asks through its stream (``_streams``: plain, TLS, TLS in
TLS), never through a socket's type. Reads go into one buffer per connection with
``recv_into``; one sans-I/O parser per exchange turns every byte received into the response
head, whenever it arrives: while waiting for ``100 Continue``, while the body goes out, or
after.
"""

from __future__ import annotations

import enum
import time
from typing import TYPE_CHECKING, Callable, Final, Literal, Optional, Union, overload

from ._response_body import ChunkedBody, EmptyBody, FixedLengthBody, GzipBody, UntilCloseBody
from ._errors import Cancelled, DeadlineExceeded, Error, ProtocolError, ResponseHeaderTimeout, ServerDisconnected, Timeout
from ._events import CHUNKED, UNTIL_CLOSE
from ._framing import frame_response
from ._headers import Headers
from ._models import Response
from ._retry import retry_reason
from ._streams import Stream

if TYPE_CHECKING:
    from collections import deque

    from ._context import Context
    from ._events import Parser, ResponseHead
    from ._prepare import PreparedRequest
    from ._request_body import BytesLike
    from ._route import PoolKey
    from ._trace import Trace

__all__ = ("Connection", "AttemptFailed", "exchange", "response_facts")

_BUFFER_SIZE = 65536
# Bodies up to this size go out in the same send as the head.
_COALESCE_LIMIT = 65536


class Connection:
    """A connected stream with its read buffer and per-attempt bookkeeping."""

    __slots__ = (
        "stream",
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
        "write_failed",
        "got_response_byte",
        "orphans",
        "_timeout_set",
    )

    def __init__(self, stream: Stream, key: PoolKey, orphans: Optional[deque[Connection]] = None) -> None:
        self.stream = stream
        self.key = key
        self.buf = bytearray(_BUFFER_SIZE)
        self.view = memoryview(self.buf)
        self.idle_since = 0.0
        self.closed = False
        self.reused = False
        self.deadline: Optional[float] = None  # when the current phase must end
        self.deadline_error: type[Timeout] = DeadlineExceeded
        self.context: Optional[Context] = None  # the Context of the request using the connection
        self.cancel_handle: Optional[int] = None
        self.trace: Optional[Trace] = None  # the Trace of the request using the connection
        self.bytes_written = 0  # request bytes of this attempt that reached the socket
        self.write_failed = False  # this attempt's request could not be written whole
        self.got_response_byte = False  # this attempt received a byte of its response
        self.orphans = orphans  # where a finalized, unfinished response leaves this connection
        self._timeout_set = False

    def close(self) -> None:
        if not self.closed:
            self.closed = True
            self.view.release()
            self.stream.close()

    def abort(self) -> None:
        """Wake a thread blocked on this connection (cancel); it sees EOF or an error."""
        self.stream.abort()

    def is_stale(self) -> bool:
        """Whether an idle connection must not be reused: the server closed it, or sent bytes
        nobody asked for (an unsolicited 408, say). One poll with no wait: readable, hung up or
        in error all mean stale."""
        return self.stream.readable()

    def response_waiting(self) -> bool:
        """Whether the server has sent something (or closed) while the request is still going
        out, without waiting; the bytes stay for ``recv_into``."""
        waiting = self.stream.response_waiting()
        self._timeout_set = False  # the stream may have changed the socket's timeout
        return waiting

    def _set_timeout(self) -> None:
        # Only called with a deadline set (every caller checks first; no check on this path).
        remaining = self.deadline - time.monotonic()  # type: ignore[operator]
        if remaining <= 0:
            raise self.deadline_error(_timeout_message(self.deadline_error))
        self.stream.settimeout(remaining)
        self._timeout_set = True

    def clear_timeout(self) -> None:
        if self._timeout_set:
            self._timeout_set = False
            self.stream.settimeout(None)

    def recv_into(self, view: memoryview) -> int:
        """Receive into ``view``; 0 at EOF. Raises ``Cancelled``, the phase's ``Timeout``, or
        the socket's ``OSError``."""
        try:
            if self.deadline is not None:
                self._set_timeout()
            return self._checked(self.stream.recv_into(view))
        except TimeoutError as exc:
            if isinstance(exc, Error):
                raise
            raise self._timeout_error() from None
        except Error:
            raise
        except OSError:
            self._raise_if_cancelled()
            raise

    def send(self, data: BytesLike) -> None:
        """Send all of ``data``, counting what reached the socket in ``bytes_written``."""
        stream = self.stream
        try:
            if self.deadline is None:
                # Most heads fit the socket buffer: one send that cannot block, GIL kept.
                sent = stream.send_nowait(data)
            else:
                if self.deadline is not None:
                    self._set_timeout()
                sent = stream.send(data)
            self.bytes_written += sent
            if sent < len(data):
                view = memoryview(data).cast("B")
                while sent < len(view):
                    if self.deadline is not None:
                        self._set_timeout()
                    count = stream.send(view[sent:])
                    sent += count
                    self.bytes_written += count
        except TimeoutError as exc:
            self.write_failed = True
            if isinstance(exc, Error):
                raise
            raise self._timeout_error() from None
        except Error:
            self.write_failed = True
            raise
        except OSError:
            self.write_failed = True
            self._raise_if_cancelled()
            raise

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

    ``retry_reason`` is Go's classification (``_retry.retry_reason``), or ``None`` when no
    retry rule applies.
    """

    def __init__(self, error: Error, retry_reason: Optional[str]) -> None:
        super().__init__(error)
        self.error = error
        self.retry_reason = retry_reason


def _failure_reason(conn: Connection) -> Optional[str]:
    return retry_reason(conn.bytes_written, conn.write_failed, conn.got_response_byte)


def response_facts(http_version: str, fields: list[tuple[str, str]]) -> tuple[bool, bool, bool]:
    """``(keeps_alive, gzipped, has_length)`` in one pass over the fields (Go's ``shouldClose``,
    its gzip check, and whether a Content-Length field is there).

    RFC 9112 §9.3: HTTP/1.1 persists unless "close"; HTTP/1.0 only with "keep-alive".
    """
    close = keep_alive = has_length = False
    encoding = None
    for field, value in fields:
        size = len(field)  # cheaper than lowering every name
        if size == 10 and field.lower() == "connection":
            tokens = [token.strip().lower() for token in value.split(",")]
            close = close or "close" in tokens
            keep_alive = keep_alive or "keep-alive" in tokens
        elif size == 16 and encoding is None and field.lower() == "content-encoding":
            encoding = value.strip().lower()  # Go: EqualFold(Header.Get(...), "gzip")
        elif size == 14 and field.lower() == "content-length":
            has_length = True
    return not close and (http_version == "HTTP/1.1" or keep_alive), encoding == "gzip", has_length


def exchange(conn: Connection, prepared: PreparedRequest, finish: Callable[[Connection, bool], None]) -> Response:
    """Write ``prepared`` on ``conn`` and read the response head.

    Returns the ``Response``; its body hands the connection to ``finish(conn, reusable)``
    when it ends or is closed. Raises ``AttemptFailed``.
    """
    context = prepared.context
    conn.bytes_written = 0
    conn.write_failed = False
    conn.got_response_byte = False
    conn.trace = prepared.trace
    if context is not None:
        conn.cancel_handle = context._add_cancel_callback(conn.abort)
        if conn.cancel_handle is None:
            raise AttemptFailed(Cancelled("request cancelled"), None)
        conn.context = context
    conn.deadline = context.deadline if context is not None else None
    conn.deadline_error = DeadlineExceeded
    parser = prepared.new_parser()  # one per exchange: no byte received is ever dropped
    try:
        head = _write_request(conn, prepared, parser)
        if head is None:
            head = _await_final_head(conn, prepared, parser)
        return _response(conn, prepared, parser, head, finish)
    except AttemptFailed:
        raise
    except Error as exc:
        raise AttemptFailed(exc, None) from None
    except OSError as exc:
        raise AttemptFailed(_io_error(conn, exc), _failure_reason(conn)) from None


def _io_error(conn: Connection, exc: OSError) -> Error:
    if conn.got_response_byte:
        return ProtocolError(f"connection broke while reading the response head: {exc}")
    if conn.bytes_written == 0:
        return ServerDisconnected(f"server closed the connection before the request was written: {exc}")
    if conn.write_failed:
        return ServerDisconnected(f"server closed the connection while the request was being written: {exc}")
    return ServerDisconnected(f"server closed the connection before responding: {exc}")


class _Signal(enum.Enum):
    CONTINUE = enum.auto()


# What _head_events returns when the server said 100 Continue to a request waiting for it.
_CONTINUE: Final = _Signal.CONTINUE
# A final head, _CONTINUE, or None.
_Answer = Union["ResponseHead", _Signal, None]


@overload
def _head_events(conn: Connection, parser: Parser, awaiting_continue: Literal[False]) -> Optional[ResponseHead]: ...
@overload
def _head_events(conn: Connection, parser: Parser, awaiting_continue: bool) -> _Answer: ...
def _head_events(conn: Connection, parser: Parser, awaiting_continue: bool) -> _Answer:
    """The next final response head the parser has, ``_CONTINUE``, or None (more bytes needed)."""
    while True:
        # Until the final head, the parser returns heads only (bytes and EndOfBody come after).
        event: Optional[ResponseHead] = parser.next_event()  # type: ignore[assignment]
        if event is None:
            return None
        if event.status_code >= 200 or event.status_code == 101:
            return event
        if _informational(conn, event, awaiting_continue):
            return _CONTINUE


def _informational(conn: Connection, event: ResponseHead, awaiting_continue: bool) -> bool:
    """Report a 1xx head (RFC 9110 §15.2; 101 is final, Go's readResponse); True when it is
    the 100 a request waiting for continue was waiting for."""
    status = event.status_code
    trace = conn.trace
    if trace is not None:
        if status == 100 and awaiting_continue and trace.got_100_continue is not None:
            trace.got_100_continue()
        if trace.got_1xx_response is not None:
            trace.got_1xx_response(status, Headers._from_list(event.headers))
    return status == 100 and awaiting_continue


def _receive(conn: Connection, parser: Parser) -> None:
    """Receive once (waiting up to the phase's deadline) and feed the parser; at EOF before
    any response byte the attempt fails with Go's classification."""
    count = conn.recv_into(conn.view)
    if count == 0:
        if not conn.got_response_byte:
            raise AttemptFailed(ServerDisconnected("server closed the connection before responding"), _failure_reason(conn))
        parser.feed_eof()
        return
    if not conn.got_response_byte:
        conn.got_response_byte = True
        trace = conn.trace
        if trace is not None and trace.got_first_response_byte is not None:
            trace.got_first_response_byte()
    parser.feed(conn.view[:count])


@overload
def _read_head(conn: Connection, parser: Parser, awaiting_continue: Literal[False] = False) -> ResponseHead: ...
@overload
def _read_head(conn: Connection, parser: Parser, awaiting_continue: bool) -> Union[ResponseHead, _Signal]: ...
def _read_head(conn: Connection, parser: Parser, awaiting_continue: bool = False) -> Union[ResponseHead, _Signal]:
    """Receive until the parser has a final head (or ``_CONTINUE``)."""
    while True:
        # Until the final head, the parser returns heads only (bytes and EndOfBody come after).
        event: Optional[ResponseHead] = parser.next_event()  # type: ignore[assignment]
        if event is None:
            _receive(conn, parser)
        elif event.status_code >= 200 or event.status_code == 101:
            return event
        elif _informational(conn, event, awaiting_continue):
            return _CONTINUE


def _write_request(conn: Connection, prepared: PreparedRequest, parser: Parser) -> Optional[ResponseHead]:
    """Write head and body; return a final response head that arrived while writing, or None."""
    trace = prepared.trace
    body = prepared.body
    head = prepared.head
    if body is None or (body.data is not None and len(body.data) <= _COALESCE_LIMIT and not prepared.expect_continue):
        # body.data is not None here (the condition above).
        conn.send(head + body.data if body is not None and len(body.data) else head)  # type: ignore[operator, arg-type]
        if trace is not None:
            if trace.wrote_headers is not None:
                trace.wrote_headers()
            if trace.wrote_request is not None:
                trace.wrote_request(None)
        return None
    conn.send(head)
    if trace is not None and trace.wrote_headers is not None:
        trace.wrote_headers()
    answer: _Answer  # declared apart: an annotated "= None" would not narrow to None
    answer = None
    awaiting_continue = prepared.expect_continue
    if awaiting_continue:
        answer = _await_continue(conn, prepared, parser)
        if answer is _CONTINUE:
            awaiting_continue = False
            # The read that brought the 100 may have brought the final answer too.
            answer = _head_events(conn, parser, False)
            if answer is not None:
                prepared.close_after = True  # the body never went: the connection is out of step
                return answer
        elif answer is not None:
            keeps_alive = response_facts(answer.http_version, answer.headers)[0]
            if not keeps_alive or prepared.wants_close:
                # A final answer on a connection that will close: the body is never sent
                # (Go's readResponse closes continueCh).
                prepared.close_after = True
                return answer
            # A final answer on a connection that lives on: Go sends the body to keep it in step.
    for piece in body.pieces():
        if answer is None and conn.response_waiting():
            answer = _answer_while_writing(conn, parser, awaiting_continue)
            if answer is _CONTINUE:
                answer, awaiting_continue = None, False
            elif answer is not None:
                # The server answered before the body was done: stop and return that answer
                # (Go returns the response, not a write error); the connection cannot be reused.
                prepared.close_after = True
                return answer
        try:
            conn.send(piece)
        except OSError as exc:
            if conn.context is not None and conn.context.cancelled:
                raise Cancelled("request cancelled") from None
            prepared.close_after = True
            if trace is not None and trace.wrote_request is not None:
                trace.wrote_request(exc)
            return answer  # the reader may still find a response the server sent before closing
    if trace is not None and trace.wrote_request is not None:
        trace.wrote_request(None)
    return answer


def _answer_while_writing(conn: Connection, parser: Parser, awaiting_continue: bool) -> _Answer:
    """Take in what the server sent while the body is going out, without waiting for more.

    Returns a final head (the body stops), ``_CONTINUE`` for a 100 that came after the wait
    for it ended, or None: 1xx heads are reported and the body goes on (Go's readLoop
    consumes them the same way). EOF or a broken connection fails the attempt here, as it
    would in the reader.
    """
    while True:
        _receive(conn, parser)
        head = _head_events(conn, parser, awaiting_continue)
        if head is not None or not conn.response_waiting():
            return head


def _await_continue(conn: Connection, prepared: PreparedRequest, parser: Parser) -> _Answer:
    """``Expect: 100-continue`` (RFC 9110 §10.1.1): wait up to ``expect_continue_timeout`` for
    100 before sending the body. Returns ``_CONTINUE``, None when the wait ended without an
    answer, or the head of a final response that came instead. Bytes that follow the 100
    stay in the parser."""
    trace = prepared.trace
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
        return _read_head(conn, parser, awaiting_continue=True)
    except _ContinueTimeout:
        return None  # no answer in time: send the body anyway
    finally:
        conn.deadline, conn.deadline_error = saved
        conn.clear_timeout()


class _ContinueTimeout(Timeout):
    pass


def _await_final_head(conn: Connection, prepared: PreparedRequest, parser: Parser) -> ResponseHead:
    """Read the final response head once the request is written, bounded by
    ``response_header_timeout`` (Go: from the request fully written) and the Context."""
    options = prepared.options
    if options.response_header_timeout is not None:
        limit = time.monotonic() + options.response_header_timeout
        if conn.deadline is None or limit < conn.deadline:
            conn.deadline, conn.deadline_error = limit, ResponseHeaderTimeout
    try:
        head = _read_head(conn, parser)
    finally:
        conn.deadline = prepared.context.deadline if prepared.context is not None else None
        conn.deadline_error = DeadlineExceeded
        if conn.deadline is None:
            conn.clear_timeout()
    return head


def _response(conn: Connection, prepared: PreparedRequest, parser: Parser, head: ResponseHead, finish: Callable[[Connection, bool], None]) -> Response:
    framing = frame_response(head, response_facts(head.http_version, head.headers), prepared.method, prepared.close_after, prepared.gzip_requested)
    reusable = framing.reusable
    length = framing.length
    response = Response.__new__(Response)
    response.status_code = head.status_code
    response.reason = head.reason
    response.http_version = head.http_version
    response.request = prepared.request
    response.uncompressed = framing.gunzip
    response.trailers = Headers()
    response.closed = False
    response.content_length = framing.content_length
    response.headers = Headers._from_list(framing.fields)

    def done(reusable: bool) -> None:
        finish(conn, reusable)

    if length == CHUNKED:
        body: Union[ChunkedBody, UntilCloseBody, EmptyBody, FixedLengthBody, GzipBody] = ChunkedBody(conn, done, parser, response.trailers, reusable)
    else:
        buffered = parser.take_unparsed()
        if length == UNTIL_CLOSE:
            body = UntilCloseBody(conn, done, buffered)
        elif length == 0:
            body = EmptyBody(conn, done)
            body._end(reusable and not buffered)
        else:
            body = FixedLengthBody(conn, done, length, buffered, reusable)
    response._body = GzipBody(body) if framing.gunzip else body
    return response
