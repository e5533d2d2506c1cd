# Included by _speedups_c.pyx (textually: it shares that module's imports and names).

# ---------------------------------------------------------------------------------------------
# The syscall loop of the common exchange: a request that is all in one buffer, on a plain TCP
# connection taken idle from the pool. With the GIL released once, it checks that the idle
# connection is still quiet, writes the request, and receives until the response head has
# arrived; the I/O-free steps (parsing, building the Response) follow with the GIL.
#
# The general exchange (_connection.exchange) is its specification: the same system calls in
# the same order (the stale check of Transport._get_conn, Connection.send, Connection.recv_into),
# the same deadlines, and what is counted for the retry rules (bytes_written, write_failed,
# got_response_byte). A cancel needs nothing here: Context.cancel() shuts the socket down
# (Connection.abort), which ends any wait below at once.

cdef enum:
    # What _exchange_run ends with.
    _X_DONE = 1  # response bytes in the buffer: a head's end, a full buffer, or EOF after bytes
    _X_CLOSED  # EOF before any response byte
    _X_STALE  # the idle connection was readable (closed, or bytes nobody asked for): nothing sent
    _X_WRITE_TIMEOUT  # the deadline passed while writing
    _X_HEAD_TIMEOUT  # response_header_timeout passed while waiting for the response
    _X_DEADLINE  # the Context's deadline passed while waiting for the response
    _X_ERROR  # a system call failed; its code is in error
    _X_INTR  # a signal interrupted a call: run the handlers with the GIL, then call again
    _X_WRITTEN  # the request is written and the caller asked to stop there
    _X_AGAIN  # the socket's buffer is full and the caller asked not to wait

cdef enum:
    # What exchange_io returns besides a count of response bytes (_connection has the same).
    EXCHANGE_CLOSED = 0
    EXCHANGE_STALE = -1
    EXCHANGE_WRITE_TIMEOUT = -2
    EXCHANGE_HEAD_TIMEOUT = -3
    EXCHANGE_DEADLINE = -4
    EXCHANGE_WRITTEN = -5
    # exchange_io's flags.
    EXCHANGE_CHECKED = 1  # the caller did the stale check (trace hooks come between)
    EXCHANGE_WRITE_ONLY = 2  # stop once written; keep the GIL unless the socket's buffer is full
    EXCHANGE_READ_ONLY = 4  # only receive: a call with EXCHANGE_WRITE_ONLY wrote the request


cdef struct _Exchange:
    long long fd
    int nonblocking  # only read where RT_IO_TOGGLES: the socket has a Python timeout
    const char* data
    Py_ssize_t length
    Py_ssize_t sent
    char* buf
    Py_ssize_t capacity
    Py_ssize_t received
    Py_ssize_t scanned  # buf[:scanned] holds no end of a head
    double deadline  # rt_io_now_ms() time, or < 0: none
    double head_timeout  # ms from the request written, or < 0: none
    double read_deadline  # while receiving: the earlier of the two, or < 0
    int read_status  # _X_HEAD_TIMEOUT or _X_DEADLINE: which one read_deadline is
    int phase  # 0: the stale check, 1: writing, 2: receiving
    int stop_after_write
    int nowait  # a full socket buffer returns _X_AGAIN rather than waiting (the GIL is held)
    int error


cdef inline int _poll_ms(double deadline) noexcept nogil:
    """A poll timeout for ``deadline``: -1 for none, 0 once it has passed, else rounded up (a
    wait that ends a little early only costs another turn of the loop)."""
    cdef double left
    if deadline < 0:
        return -1
    left = deadline - rt_io_now_ms()
    if left <= 0:
        return 0
    if left >= 2147483646.0:
        return 2147483647
    return <int>left + 1


cdef inline bint _head_ended(_Exchange* x) noexcept nogil:
    """Whether buf holds an empty line: LF [CR] LF, the end of a head (RFC 9112 §2.2: a bare
    LF may end a line, as the parser allows). Resumes where the last look stopped."""
    cdef const char* p = x.buf
    cdef Py_ssize_t i = x.scanned, end = x.received
    cdef const char* hit
    while i < end:
        hit = <const char*>memchr(p + i, 10, <size_t>(end - i))
        if hit == NULL:
            break
        i = hit - p
        if i + 1 >= end:
            x.scanned = i
            return False
        if p[i + 1] == 10:
            return True
        if p[i + 1] == 13:
            if i + 2 >= end:
                x.scanned = i
                return False
            if p[i + 2] == 10:
                return True
        i += 1
    x.scanned = end
    return False


cdef inline void _start_reading(_Exchange* x) noexcept nogil:
    """The request is written. Go: response_header_timeout runs from here; the earlier of it
    and the Context's deadline bounds the wait (_connection._await_final_head)."""
    cdef double limit
    x.phase = 2
    x.read_deadline, x.read_status = x.deadline, _X_DEADLINE
    if x.head_timeout >= 0:
        limit = rt_io_now_ms() + x.head_timeout
        if x.deadline < 0 or limit < x.deadline:
            x.read_deadline, x.read_status = limit, _X_HEAD_TIMEOUT


cdef int _exchange_run(_Exchange* x) noexcept nogil:
    """Advance the exchange as far as it goes; resumable after _X_INTR."""
    cdef int ready
    cdef Py_ssize_t n
    if x.phase == 0:
        # Transport._get_conn's check: readable, hung up or in error all mean stale (a poll that
        # fails says as much of the descriptor).
        ready = rt_io_poll_readable(x.fd)
        if ready == RT_IO_INTR:
            return _X_INTR
        if ready != 0:
            return _X_STALE
        x.phase = 1
    if x.phase == 1:
        while x.sent < x.length:
            # Connection._set_timeout: no send once the deadline has passed.
            if x.deadline >= 0 and rt_io_now_ms() >= x.deadline:
                return _X_WRITE_TIMEOUT
            n = rt_io_send_some(x.fd, x.data + x.sent, x.length - x.sent, x.nonblocking, x.deadline < 0)
            if n >= 0:
                x.sent += n
                continue
            if n == RT_IO_AGAIN:
                if x.nowait:
                    return _X_AGAIN
                ready = rt_io_wait(x.fd, 1, _poll_ms(x.deadline))
                if ready >= 0:
                    continue  # writable, or timed out: the check above says which
                n = ready
            if n == RT_IO_INTR:
                return _X_INTR
            x.error = rt_io_last_error()
            return _X_ERROR
        _start_reading(x)
        if x.stop_after_write:
            return _X_WRITTEN
    while True:
        if x.read_deadline >= 0:
            ready = rt_io_wait(x.fd, 0, _poll_ms(x.read_deadline))
            if ready == 0:
                return x.read_status
            if ready < 0:
                if ready == RT_IO_INTR:
                    return _X_INTR
                x.error = rt_io_last_error()
                return _X_ERROR
        # Without a deadline a blocking socket blocks in recv itself: one call, not two.
        n = rt_io_recv_some(x.fd, x.buf + x.received, x.capacity - x.received, x.read_deadline < 0)
        if n > 0:
            x.received += n
            if _head_ended(x) or x.received == x.capacity:
                return _X_DONE
            continue
        if n == 0:
            # The parser turns EOF inside a head into its own error (the caller reads again).
            return _X_DONE if x.received else _X_CLOSED
        if n == RT_IO_AGAIN:
            if x.read_deadline < 0:
                ready = rt_io_wait(x.fd, 0, -1)  # a socket with a Python timeout: non-blocking
                if ready >= 0:
                    continue
                n = ready
            else:
                continue
        if n == RT_IO_INTR:
            return _X_INTR
        x.error = rt_io_last_error()
        return _X_ERROR


def exchange_io(conn, long long fd, data, double timeout, double head_timeout, int flags=0):
    """Write ``data`` (a whole request) on ``conn``'s plain TCP socket ``fd`` and receive the
    start of the response into ``conn.buf``, with the GIL released once for all of it.

    First the check every idle connection gets before reuse: if the socket is readable, hung
    up or in error, nothing is sent and ``EXCHANGE_STALE`` is returned. Then ``data`` is sent
    whole and the response received until the end of its head is in the buffer (or the buffer
    is full, or the server closed after sending something). ``timeout`` is the seconds left of
    the request's deadline, ``head_timeout`` the seconds allowed from the request written to
    the response (< 0: none).

    With trace hooks to call in between, the caller splits the exchange in two: flags
    ``EXCHANGE_CHECKED | EXCHANGE_WRITE_ONLY`` write (keeping the GIL while the socket takes
    the bytes at once) and return ``EXCHANGE_WRITTEN``; ``EXCHANGE_READ_ONLY`` then receives.

    Returns the count of response bytes in ``conn.buf`` (> 0), ``EXCHANGE_CLOSED`` (EOF before
    any), ``EXCHANGE_WRITE_TIMEOUT``, ``EXCHANGE_HEAD_TIMEOUT`` or ``EXCHANGE_DEADLINE``; a
    failed system call raises its ``OSError``. Always sets ``conn.bytes_written`` (adding to it
    when receiving only), and ``conn.write_failed`` and ``conn.got_response_byte`` when they
    become true, as ``Connection.send`` and ``recv_into`` do.
    """
    cdef _Exchange x
    cdef Py_buffer request, into
    cdef int status
    x.fd = fd
    x.nonblocking = 0
    if RT_IO_TOGGLES and timeout >= 0:
        # Winsock cannot be asked whether a socket blocks (send_nowait's reasoning).
        x.nonblocking = conn.stream.sock.gettimeout() is not None
    x.deadline = rt_io_now_ms() + timeout * 1000.0 if timeout >= 0 else -1.0
    x.head_timeout = head_timeout * 1000.0 if head_timeout >= 0 else -1.0
    x.read_deadline = -1.0
    x.read_status = _X_DEADLINE
    x.sent = x.received = x.scanned = 0
    x.phase = 1 if flags & EXCHANGE_CHECKED else 0
    x.stop_after_write = (flags & EXCHANGE_WRITE_ONLY) != 0
    x.nowait = x.stop_after_write
    x.error = 0
    if flags & EXCHANGE_READ_ONLY:
        _start_reading(&x)
        data = b""
    PyObject_GetBuffer(data, &request, PyBUF_SIMPLE)
    try:
        # An export of the buffer for the call: nothing can resize or free it meanwhile.
        PyObject_GetBuffer(conn.buf, &into, PyBUF_WRITABLE)
        try:
            x.data = <const char*>request.buf
            x.length = request.len
            x.buf = <char*>into.buf
            x.capacity = into.len
            while True:
                if x.nowait:
                    status = _exchange_run(&x)  # sends that cannot block: the GIL stays
                    if status == _X_AGAIN:
                        x.nowait = 0  # the socket's buffer is full: wait with the GIL released
                        continue
                else:
                    with nogil:
                        status = _exchange_run(&x)
                if status != _X_INTR:
                    break
                if flags & EXCHANGE_READ_ONLY == 0:
                    conn.bytes_written = x.sent
                PyErr_CheckSignals()  # a handler's exception ends the exchange here
        finally:
            PyBuffer_Release(&into)
    finally:
        PyBuffer_Release(&request)
    if flags & EXCHANGE_READ_ONLY == 0:
        conn.bytes_written = x.sent
    if status == _X_DONE:
        conn.got_response_byte = True
        return x.received
    if status == _X_WRITTEN:
        return EXCHANGE_WRITTEN
    if status == _X_CLOSED:
        return EXCHANGE_CLOSED
    if status == _X_STALE:
        return EXCHANGE_STALE
    if status == _X_WRITE_TIMEOUT:
        conn.write_failed = True
        return EXCHANGE_WRITE_TIMEOUT
    if status == _X_HEAD_TIMEOUT:
        return EXCHANGE_HEAD_TIMEOUT
    if status == _X_DEADLINE:
        return EXCHANGE_DEADLINE
    if x.phase == 1:
        conn.write_failed = True
    elif x.received:
        conn.got_response_byte = True
    rt_io_restore_error(x.error)
    rt_io_raise()
