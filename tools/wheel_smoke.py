"""The check each built wheel gets where the test suite cannot run yet (macOS, Windows: the suite
counts open descriptors through /proc). Run with the wheel installed, from outside the source.

It proves the compiled module is there and that its socket calls (csrc/rt_io.h: poll, the
non-blocking send) work on this platform, then makes one request over loopback where the
dialer runs (everywhere but Windows, whose select module has no poll).
"""

from __future__ import annotations

import http.server
import socket
import sys
import threading

import roundtrip
from roundtrip import _speedups_c as c


def check_socket_calls() -> None:
    left, right = socket.socketpair()
    with left, right:
        assert c.poll_readable(right.fileno()) is False
        assert c.send_nowait(left, b"ping") == 4
        assert c.poll_readable(right.fileno()) is True
        assert right.recv(4) == b"ping"
        sent = 0
        for _ in range(10_000):  # fill the buffers; a send that finds no room returns 0
            count = c.send_nowait(left, b"x" * 65536)
            if count == 0:
                break
            sent += count
        else:
            raise AssertionError("send_nowait never found the buffers full")
        right.settimeout(10)
        received = 0
        while received < sent:
            received += len(right.recv(1 << 20))
        assert received == sent and left.gettimeout() is None
        left.settimeout(5)
        assert c.send_nowait(left, b"after") == 5 and right.recv(5) == b"after"


def check_round_trip() -> None:
    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            body = b"hello from " + self.path.encode()
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        transport = roundtrip.Transport()
        try:
            url = f"http://127.0.0.1:{server.server_address[1]}/smoke"
            with transport.round_trip(roundtrip.Request("GET", url)) as resp:
                assert resp.status_code == 200 and resp.read() == b"hello from /smoke"
        finally:
            transport.close()
    finally:
        server.shutdown()
        server.server_close()
        thread.join(10)


def main() -> int:
    assert roundtrip.IMPLEMENTATION == "c", roundtrip.IMPLEMENTATION
    print(f"roundtrip {roundtrip.__version__} ({roundtrip.IMPLEMENTATION}, I/O {c.IO_BACKEND}) on {sys.platform}")
    check_socket_calls()
    print("ok: socket calls")
    if sys.platform != "win32":
        check_round_trip()
        print("ok: a round trip over loopback")
    return 0


if __name__ == "__main__":
    sys.exit(main())
