"""Every fenced Python block in ``docs/`` and ``README.md`` runs here, against local servers.

Sybil parses the Markdown (MyST for ``docs/``, CommonMark for the README) and hands over each
Python block with its line number; the blocks of one page run in order in one namespace, as a
reader would type them, under both implementations (the ``impl`` fixture).

The convention the pages state (docs/index.md):

- ``http://127.0.0.1:8080`` is a plain HTTP server and ``https://localhost:8443`` a TLS server
  whose CA certificate is ``ca.pem`` in the working directory. Here those addresses (and the
  address ``("127.0.0.1", 8080)``) are rewritten to servers on free loopback ports, and the
  working directory is a temporary one. Other URLs use reserved names (``.internal``,
  ``.example``) or private addresses, which a page's own ``dial`` or proxy handles or which are
  never contacted; a test checks that.
- A block whose first line is ``# Not run: REASON`` is shown but not run; it is reported as a
  skipped test with that reason, so every such block says why.
"""

from __future__ import annotations

import gzip
import ipaddress
import json
import os
import re
import socket
import sys
import traceback
from pathlib import Path
from typing import Any, Callable, Iterator, Optional

import pytest

import roundtrip

from servers import ClientGone, ReceivedRequest, ScriptedConnection, ScriptedServer, respond

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
PAGES = sorted(DOCS.glob("*.md")) + [ROOT / "README.md"]
HTTP_ADDRESS = "http://127.0.0.1:8080"
HTTPS_ADDRESS = "https://localhost:8443"
NOT_RUN = re.compile(r"#\s*Not run:\s*(\S.*)")
# Fences that open a Python block in either flavour of Markdown.
PYTHON_FENCE = re.compile(r"^\s*(```|~~~)\s*(python|py|python3|\{code-block\}\s+python|\{code\}\s+python)\s*$", re.MULTILINE)

try:
    from sybil import Sybil
    from sybil.parsers import markdown as markdown_parsers
    from sybil.parsers import myst as myst_parsers
except ImportError:  # pragma: no cover - sybil is a test requirement
    Sybil = None  # type: ignore[assignment,misc]


def _sybil_or_skip() -> None:
    if Sybil is None:
        if os.environ.get("CI", "").strip().lower() not in ("", "0", "false", "no", "off"):
            pytest.fail("sybil is not installed (it is part of the test extra)")
        pytest.skip("sybil is not installed")


def python_blocks(page: Path) -> list[tuple[int, str]]:
    """``(line, source)`` of every Python block of ``page``, in order, as Sybil finds them."""
    _sybil_or_skip()
    parsers = markdown_parsers if page.name == "README.md" else myst_parsers
    document = Sybil(parsers=[parsers.PythonCodeBlockParser()]).parse(page)
    return [(example.line, str(example.region.parsed)) for example in document.examples()]


def _page_id(page: Path) -> str:
    return str(page.relative_to(ROOT))


# -- the servers the examples talk to -----------------------------------------------------------


def _read_body(conn: ScriptedConnection, request: ReceivedRequest) -> bytes:
    if (request.header("transfer-encoding") or "").lower() == "chunked":
        body = b""
        while True:
            size = int(conn.read_until(b"\r\n").split(b";")[0].strip(), 16)
            if size == 0:
                while conn.read_until(b"\r\n") != b"\r\n":
                    pass  # trailer fields
                return body
            body += conn.read_exactly(size + 2)[:-2]
    return conn.read_exactly(int(request.header("content-length") or "0"))


def _route(conn: ScriptedConnection, request: ReceivedRequest) -> bool:
    """Answer one request; returns whether the connection stays open."""
    target = request.target
    if target.startswith("http://"):  # absolute form: this server is also a forward proxy
        target = "/" + target.split("/", 3)[3] if target.count("/") >= 3 else "/"
    path, _, query = target.partition("?")
    if path in ("/", "/hello"):
        conn.send(respond(200, b"Hello, World!\n", [("Content-Type", "text/plain")]))
    elif path == "/echo":
        echoed = {
            "method": request.method,
            "target": request.target,
            "headers": [list(field) for field in request.headers],
            "body": request.body.decode("latin-1"),
        }
        conn.send(respond(200, json.dumps(echoed).encode(), [("Content-Type", "application/json")]))
    elif path == "/gzip":
        conn.send(respond(200, gzip.compress(b"Hello, gzip!\n" * 100), [("Content-Type", "text/plain"), ("Content-Encoding", "gzip")]))
    elif path == "/chunked":
        pieces = b"".join(b"%x\r\n%s\r\n" % (len(p), p) for p in (b"Hello, ", b"chunked ", b"world!\n"))
        conn.send(
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nTrailer: Checksum\r\n\r\n"
            + pieces
            + b"0\r\nChecksum: 3f2a\r\n\r\n"
        )
    elif path.startswith("/bytes/"):
        conn.send(respond(200, b"x" * min(int(path[7:]), 1 << 24), [("Content-Type", "application/octet-stream")]))
    elif path.startswith("/status/"):
        conn.send(respond(int(path[8:]), b"", reason="Status"))
    elif path == "/early-hints":
        conn.send(b"HTTP/1.1 103 Early Hints\r\nLink: </style.css>; rel=preload\r\n\r\n")
        conn.send(respond(200, b"<html></html>\n", [("Content-Type", "text/html")]))
    elif path == "/slow":
        conn.wait_closed(5.0)  # never answers; the client gives up and closes
        return False
    elif path == "/close":
        return False  # closes without a response
    else:
        conn.send(respond(404, b"not found\n", reason="Not Found"))
    return (request.header("connection") or "").lower() != "close"


def docs_handler(conn: ScriptedConnection) -> None:
    """A small keep-alive HTTP/1.1 server: the routes the documentation uses."""
    for _ in range(10_000):
        try:
            head = conn.read_head()
        except (ClientGone, ConnectionError, socket.timeout):
            return
        request = ReceivedRequest(head, b"", conn.index)
        if (request.header("expect") or "").lower() == "100-continue":
            conn.send(b"HTTP/1.1 100 Continue\r\n\r\n")
        request.body = request.raw_body = _read_body(conn, request)
        conn.server.received.append(request)
        if not _route(conn, request):
            return


@pytest.fixture
def docs_servers(server: Callable[..., ScriptedServer], certs: Any) -> tuple[str, str]:
    """``(http base URL, https base URL)`` of the servers the examples talk to."""
    from proxies import tls_handler

    http = server(docs_handler)
    https = server(tls_handler(certs.server_context(), docs_handler))
    return f"http://127.0.0.1:{http.port}", f"https://localhost:{https.port}"


# -- running a page -----------------------------------------------------------------------------


def _close_everything(namespace: dict[str, Any]) -> None:
    """Close what the examples left open (Transports, responses, clients, sessions), so that
    the suite's leak check sees only what the library itself leaks."""
    for value in list(namespace.values()):
        close = getattr(value, "close", None)
        if isinstance(value, type) or not callable(close):
            continue
        module = type(value).__module__.split(".")[0]
        if module in ("roundtrip", "httpx", "requests", "_io", "io"):
            try:
                close()
            except Exception:
                pass


def run_page(page: Path, http_base: str, https_base: str) -> tuple[int, list[str]]:
    """Run the page's blocks in order; returns (blocks run, reasons of blocks not run)."""
    namespace: dict[str, Any] = {"__name__": "__docs__"}
    ran, not_run = 0, []
    try:
        for line, source in python_blocks(page):
            first = source.lstrip().splitlines()[0] if source.strip() else ""
            reason = NOT_RUN.fullmatch(first.strip())
            if reason:
                not_run.append(f"{_page_id(page)}:{line}: {reason.group(1)}")
                continue
            http_port = http_base.rsplit(":", 1)[1]
            code = (
                source.replace(HTTP_ADDRESS, http_base)
                .replace(HTTPS_ADDRESS, https_base)
                .replace('("127.0.0.1", 8080)', f'("127.0.0.1", {http_port})')
            )
            # Blank lines in front, so that a traceback points at the page's own line.
            compiled = compile("\n" * line + code, str(page), "exec")
            try:
                exec(compiled, namespace)
            except BaseException:
                pytest.fail(f"the block at {_page_id(page)}:{line + 1} failed:\n{traceback.format_exc()}", pytrace=False)
            ran += 1
    finally:
        _close_everything(namespace)
    return ran, not_run


@pytest.fixture
def example_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, certs: Any) -> Iterator[Path]:
    """A scratch working directory holding ``ca.pem``, and no proxy variables."""
    certs.ca.cert_pem.write_to_path(str(tmp_path / "ca.pem"))
    for name in list(os.environ):
        if name.lower() in ("http_proxy", "https_proxy", "all_proxy", "no_proxy", "request_method"):
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)
    saved = dict(os.environ)
    yield tmp_path
    os.environ.clear()  # a page that sets variables for its example leaves nothing behind
    os.environ.update(saved)


@pytest.mark.parametrize("page", PAGES, ids=_page_id)
def test_examples_on_the_page_run(page: Path, docs_servers: tuple[str, str], example_env: Path, capsys: Any) -> None:
    ran, not_run = run_page(page, *docs_servers)
    total = len(python_blocks(page))
    assert ran + len(not_run) == total


def _blocks_not_run() -> list[tuple[str, str]]:
    found = []
    for page in PAGES:
        for line, source in _raw_blocks(page):
            match = NOT_RUN.fullmatch(source.lstrip().splitlines()[0].strip()) if source.strip() else None
            if match:
                found.append((f"{_page_id(page)}:{line}", match.group(1)))
    return found


def _raw_blocks(page: Path) -> list[tuple[int, str]]:
    try:
        return python_blocks(page)
    except BaseException:  # sybil missing: the parametrized tests report it
        return []


@pytest.mark.once
@pytest.mark.parametrize(("where", "reason"), _blocks_not_run() or [("none", "")], ids=lambda value: value if ":" in value else None)
def test_block_not_run_says_why(where: str, reason: str) -> None:
    if where == "none":
        return
    assert len(reason) >= 10, f"{where}: a block that is not run needs a real reason"
    pytest.skip(f"{where}: {reason}")


@pytest.mark.once
@pytest.mark.parametrize("page", PAGES, ids=_page_id)
def test_every_python_fence_is_collected(page: Path) -> None:
    """A block Sybil did not see would never run: count the fences independently."""
    fences = len(PYTHON_FENCE.findall(page.read_text(encoding="utf-8")))
    assert len(python_blocks(page)) == fences


def _reserved(host: str) -> bool:
    """A name that can never reach a public server: RFC 2606's ``.example``, ``.test`` and
    ``.invalid``, the private-use ``.internal``, or a private or loopback address."""
    if host.endswith((".internal", ".example", ".test", ".invalid")):
        return True
    try:
        address = ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return False
    return address.is_private or address.is_loopback


@pytest.mark.once
def test_the_examples_talk_to_local_servers_only() -> None:
    """Every URL in a block that runs is a test address rewritten to a loopback server, or a
    reserved name that a page's own ``dial`` or proxy handles, or that is never contacted."""
    urls = re.compile(r"(https?|socks5h?)://[^\s\"')/]+")
    for page in PAGES:
        for line, source in _raw_blocks(page):
            if NOT_RUN.fullmatch(source.lstrip().splitlines()[0].strip()):
                continue
            for match in urls.finditer(source):
                url = match.group(0)
                host = url.split("://", 1)[1].rsplit("@", 1)[-1].rsplit(":", 1)[0]
                assert url in (HTTP_ADDRESS, HTTPS_ADDRESS) or _reserved(host), (
                    f"{_page_id(page)}:{line}: {url} is not a local test address"
                )


def test_the_docs_server_answers_the_documented_routes(docs_servers: tuple[str, str], transport: roundtrip.Transport) -> None:
    http_base, _ = docs_servers
    with transport.round_trip(roundtrip.Request("GET", http_base + "/hello")) as resp:
        assert resp.read() == b"Hello, World!\n"
    with transport.round_trip(roundtrip.Request("GET", http_base + "/chunked")) as resp:
        assert resp.read() == b"Hello, chunked world!\n"
        assert resp.trailers["Checksum"] == "3f2a"
