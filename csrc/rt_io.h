/* Every system call roundtrip/_speedups_c.pyx makes, for POSIX and for Winsock.
 *
 * Operations on a socket that the caller's socket.socket owns:
 *   rt_io_poll_readable(s)          readable, hung up or in error now (1), not (0), without waiting
 *   rt_io_send_nowait(s, p, n, nb)  send what fits now: the count sent, or RT_IO_AGAIN if nothing
 *                                   fits; nb says whether the socket is already non-blocking
 *                                   (Python's sock.gettimeout() is not None)
 *   rt_io_wait(s, w, ms)            wait up to ms milliseconds (-1: no limit) until the socket is
 *                                   readable (w = 0; hung up and in error count) or writable (w = 1):
 *                                   1 ready, 0 timed out
 *   rt_io_send_some(s, p, n, nb, b) send some of p: without blocking, or (b set) as the socket does
 *                                   (it may block if it is a blocking socket); the count or
 *                                   RT_IO_AGAIN
 *   rt_io_recv_some(s, p, n, b)     receive into p: 0 at EOF; without blocking, or (b set) as the
 *                                   socket does. Without b, on Winsock and the portable path, call
 *                                   it only after rt_io_wait said readable (it cannot be told not
 *                                   to block there).
 *   rt_io_now_ms()                  a monotonic clock in milliseconds (only differences mean anything)
 *   RT_IO_TOGGLES                   1 where rt_io_send_some without b needs nb (the toggle below)
 * The ones that call the system return RT_IO_INTR when a signal interrupted them (the caller
 * runs the signal handlers and calls again) and RT_IO_ERROR with the error left for
 * rt_io_raise(), which sets OSError (rt_io_last_error/rt_io_restore_error carry it across
 * other calls, such as re-taking the GIL). rt_io_wait, rt_io_send_some, rt_io_recv_some and
 * rt_io_now_ms touch no Python object: they may run with the GIL released.
 *
 * Three implementations:
 *   RT_IO_POSIX     (Linux, macOS, BSDs) poll(2) and send(2) with MSG_DONTWAIT: no state changes.
 *   RT_IO_WINSOCK   (Windows) WSAPoll and send; Winsock has no MSG_DONTWAIT and cannot report
 *                   whether a socket blocks, so a blocking socket is switched to non-blocking
 *                   (ioctlsocket FIONBIO) around the send, from what Python knows of it.
 *   RT_IO_PORTABLE  (POSIX, built with ROUNDTRIP_PORTABLE_IO=1) the Winsock path's logic on POSIX
 *                   calls, so the code path Windows runs is tested where Windows is not: the
 *                   same readiness mask as WSAPoll, the same toggle around a plain send (fcntl
 *                   O_NONBLOCK for FIONBIO), no MSG_DONTWAIT.
 *
 * The toggle changes state shared with other threads for the length of one send; roundtrip only
 * sends a request this way, on a connection no other thread uses meanwhile (a cancel's shutdown
 * from another thread does not care whether the socket blocks).
 */
#ifndef RT_IO_H
#define RT_IO_H

#include <Python.h>

#define RT_IO_ERROR (-1)
#define RT_IO_AGAIN (-2)
#define RT_IO_INTR (-3)

#if defined(_WIN32)
#define RT_IO_WINSOCK 1
#elif defined(RT_IO_PORTABLE)
#undef RT_IO_PORTABLE
#define RT_IO_PORTABLE 1
#else
#define RT_IO_POSIX 1
#endif

/* ---------------------------------------------------------------------------------------- */
#if defined(RT_IO_WINSOCK)

#ifndef WIN32_LEAN_AND_MEAN
#define WIN32_LEAN_AND_MEAN
#endif
#include <winsock2.h>

#define RT_IO_NAME "winsock"
#define RT_IO_TOGGLES 1
static inline int rt_io_poll_readable(long long fd) {
    WSAPOLLFD entry;
    int ready;
    entry.fd = (SOCKET)fd;
    entry.events = POLLRDNORM;  /* WSAPoll rejects POLLPRI; POLLIN is POLLRDNORM|POLLRDBAND */
    entry.revents = 0;
    ready = WSAPoll(&entry, 1, 0);
    if (ready == SOCKET_ERROR)
        return WSAGetLastError() == WSAEINTR ? RT_IO_INTR : RT_IO_ERROR;
    return ready > 0 && (entry.revents & (POLLRDNORM | POLLHUP | POLLERR | POLLNVAL)) != 0;
}

static inline int rt_io_set_nonblocking(long long fd, int on) {
    u_long mode = on ? 1 : 0;
    return ioctlsocket((SOCKET)fd, FIONBIO, &mode) == 0 ? 0 : RT_IO_ERROR;
}

static inline Py_ssize_t rt_io_plain_send(long long fd, const char* buf, Py_ssize_t n) {
    int chunk = n > INT_MAX ? INT_MAX : (int)n;  /* send takes an int length */
    int sent = send((SOCKET)fd, buf, chunk, 0);
    if (sent != SOCKET_ERROR)
        return sent;
    switch (WSAGetLastError()) {
    case WSAEWOULDBLOCK: return RT_IO_AGAIN;
    case WSAEINTR: return RT_IO_INTR;
    default: return RT_IO_ERROR;
    }
}

static inline int rt_io_wait(long long fd, int for_write, int timeout_ms) {
    WSAPOLLFD entry;
    int ready;
    entry.fd = (SOCKET)fd;
    entry.events = for_write ? POLLWRNORM : POLLRDNORM;
    entry.revents = 0;
    ready = WSAPoll(&entry, 1, timeout_ms);
    if (ready == SOCKET_ERROR)
        return WSAGetLastError() == WSAEINTR ? RT_IO_INTR : RT_IO_ERROR;
    return ready > 0;  /* hang-up and error are reported whatever was asked: the next call fails */
}

static inline Py_ssize_t rt_io_plain_recv(long long fd, char* buf, Py_ssize_t n) {
    int chunk = n > INT_MAX ? INT_MAX : (int)n;
    int got = recv((SOCKET)fd, buf, chunk, 0);
    if (got != SOCKET_ERROR)
        return got;
    switch (WSAGetLastError()) {
    case WSAEWOULDBLOCK: return RT_IO_AGAIN;
    case WSAEINTR: return RT_IO_INTR;
    default: return RT_IO_ERROR;
    }
}

static inline double rt_io_now_ms(void) {
    return (double)GetTickCount64();
}

static inline PyObject* rt_io_raise(void) {
    return PyErr_SetExcFromWindowsErr(PyExc_OSError, WSAGetLastError());
}

static inline int rt_io_last_error(void) { return WSAGetLastError(); }
static inline void rt_io_restore_error(int code) { WSASetLastError(code); }

/* ---------------------------------------------------------------------------------------- */
#else /* POSIX: RT_IO_POSIX or RT_IO_PORTABLE */

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <time.h>

#ifndef POLLRDNORM
#define POLLRDNORM POLLIN  /* hidden by some strict feature-test settings; POLLIN covers it */
#endif
#ifndef MSG_NOSIGNAL
#define MSG_NOSIGNAL 0  /* macOS: Python ignores SIGPIPE, so EPIPE comes back as an error */
#endif

static inline int rt_io_errno_code(void) {
    if (errno == EINTR)
        return RT_IO_INTR;
    if (errno == EAGAIN || errno == EWOULDBLOCK)
        return RT_IO_AGAIN;
    return RT_IO_ERROR;
}

static inline PyObject* rt_io_raise(void) {
    return PyErr_SetFromErrno(PyExc_OSError);
}

static inline int rt_io_last_error(void) { return errno; }
static inline void rt_io_restore_error(int code) { errno = code; }

static inline double rt_io_now_ms(void) {
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    return (double)now.tv_sec * 1000.0 + (double)now.tv_nsec / 1e6;
}

#if defined(RT_IO_POSIX)
#define RT_IO_NAME "posix"
#define RT_IO_TOGGLES 0

static inline int rt_io_poll_readable(long long fd) {
    struct pollfd entry;
    int ready;
    entry.fd = (int)fd;
    entry.events = POLLIN;
    entry.revents = 0;
    ready = poll(&entry, 1, 0);
    if (ready < 0)
        return errno == EINTR ? RT_IO_INTR : RT_IO_ERROR;
    return ready > 0;
}

#else /* RT_IO_PORTABLE */
#define RT_IO_NAME "portable"
#define RT_IO_TOGGLES 1

static inline int rt_io_poll_readable(long long fd) {
    /* WSAPoll's reading: normal data, hang-up, error or an invalid handle all count. */
    struct pollfd entry;
    int ready;
    entry.fd = (int)fd;
    entry.events = POLLRDNORM;
    entry.revents = 0;
    ready = poll(&entry, 1, 0);
    if (ready < 0)
        return errno == EINTR ? RT_IO_INTR : RT_IO_ERROR;
    return ready > 0 && (entry.revents & (POLLRDNORM | POLLHUP | POLLERR | POLLNVAL)) != 0;
}

static inline int rt_io_set_nonblocking(long long fd, int on) {
    int flags = fcntl((int)fd, F_GETFL);
    if (flags < 0)
        return RT_IO_ERROR;
    flags = on ? (flags | O_NONBLOCK) : (flags & ~O_NONBLOCK);
    return fcntl((int)fd, F_SETFL, flags) == 0 ? 0 : RT_IO_ERROR;
}

static inline Py_ssize_t rt_io_plain_send(long long fd, const char* buf, Py_ssize_t n) {
    ssize_t sent = send((int)fd, buf, (size_t)n, MSG_NOSIGNAL);
    return sent >= 0 ? (Py_ssize_t)sent : (Py_ssize_t)rt_io_errno_code();
}

static inline Py_ssize_t rt_io_plain_recv(long long fd, char* buf, Py_ssize_t n) {
    ssize_t got = recv((int)fd, buf, (size_t)n, 0);
    return got >= 0 ? (Py_ssize_t)got : (Py_ssize_t)rt_io_errno_code();
}

#endif /* RT_IO_PORTABLE */

static inline int rt_io_wait(long long fd, int for_write, int timeout_ms) {
    struct pollfd entry;
    int ready;
    entry.fd = (int)fd;
    entry.events = for_write ? POLLOUT : POLLIN;
    entry.revents = 0;
    ready = poll(&entry, 1, timeout_ms);
    if (ready < 0)
        return errno == EINTR ? RT_IO_INTR : RT_IO_ERROR;
    return ready > 0;  /* hang-up and error are reported whatever was asked: the next call fails */
}

#endif /* POSIX */

/* ---------------------------------------------------------------------------------------- */
#if defined(RT_IO_POSIX)

static inline Py_ssize_t rt_io_send_nowait(long long fd, const char* buf, Py_ssize_t n, int nonblocking) {
    ssize_t sent;
    (void)nonblocking;  /* MSG_DONTWAIT makes this one call non-blocking either way */
    sent = send((int)fd, buf, (size_t)n, MSG_DONTWAIT | MSG_NOSIGNAL);
    return sent >= 0 ? (Py_ssize_t)sent : (Py_ssize_t)rt_io_errno_code();
}

static inline Py_ssize_t rt_io_send_some(long long fd, const char* buf, Py_ssize_t n, int nonblocking, int may_block) {
    (void)may_block;  /* never blocks: a full socket buffer is waited for with rt_io_wait */
    return rt_io_send_nowait(fd, buf, n, nonblocking);
}

static inline Py_ssize_t rt_io_recv_some(long long fd, char* buf, Py_ssize_t n, int may_block) {
    ssize_t got = recv((int)fd, buf, (size_t)n, may_block ? 0 : MSG_DONTWAIT);
    return got >= 0 ? (Py_ssize_t)got : (Py_ssize_t)rt_io_errno_code();
}

#else /* Winsock and its portable twin: toggle a blocking socket around a plain send */

static inline Py_ssize_t rt_io_send_nowait(long long fd, const char* buf, Py_ssize_t n, int nonblocking) {
    Py_ssize_t sent;
    int error;
    if (nonblocking)
        return rt_io_plain_send(fd, buf, n);
    if (rt_io_set_nonblocking(fd, 1) != 0)
        return RT_IO_ERROR;
    sent = rt_io_plain_send(fd, buf, n);
    error = rt_io_last_error();
    if (rt_io_set_nonblocking(fd, 0) != 0)
        return RT_IO_ERROR;  /* the socket would stay non-blocking: report that instead */
    rt_io_restore_error(error);  /* the send's own error, for rt_io_raise */
    return sent;
}

static inline Py_ssize_t rt_io_send_some(long long fd, const char* buf, Py_ssize_t n, int nonblocking, int may_block) {
    /* Blocking is allowed when nothing bounds the wait (a cancel's shutdown still ends it):
     * no toggle then. */
    return may_block ? rt_io_plain_send(fd, buf, n) : rt_io_send_nowait(fd, buf, n, nonblocking);
}

static inline Py_ssize_t rt_io_recv_some(long long fd, char* buf, Py_ssize_t n, int may_block) {
    (void)may_block;  /* without it the caller waited for readability first: this cannot block */
    return rt_io_plain_recv(fd, buf, n);
}

#endif

#endif /* RT_IO_H */
