"""The ``roundtrip`` command (SPEC §7) against scripted servers, and ``roundtrip bench`` in its
smallest mode."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from roundtrip import _speedups_py
from roundtrip._cli import main

from servers import keep_alive_handler, respond

ROOT = Path(__file__).resolve().parents[1]
PHASES = ("DNS", "connect", "TLS", "request written", "first byte", "body done")


def run_cli(capsysbinary, *argv: str) -> tuple[int, bytes, str]:
    code = main(list(argv))
    captured = capsysbinary.readouterr()
    return code, captured.out, captured.err.decode()


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT), env.get("PYTHONPATH", "")) if p)
    return env


def refused_port() -> int:
    """A port on 127.0.0.1 where nothing listens."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_body_goes_to_stdout_exactly(capsysbinary, server):
    body = b"\x00binary\r\n\xff\xfe no newline at the end"
    srv = server(keep_alive_handler(body))
    code, out, err = run_cli(capsysbinary, srv.url("/file?x=1"))
    assert (code, out, err) == (0, body, "")
    assert srv.received[0].request_line == "GET /file?x=1 HTTP/1.1"


def test_include_writes_status_line_and_headers_before_the_body(capsysbinary, server):
    srv = server(keep_alive_handler(b"hi", [("Content-Type", "text/plain"), ("X-Thing", "a b")]))
    code, out, _ = run_cli(capsysbinary, "-i", srv.url("/"))
    assert code == 0
    assert out == b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nX-Thing: a b\r\nContent-Length: 2\r\n\r\nhi"


def test_error_status_is_a_response_not_a_failure(capsysbinary, server):
    srv = server(lambda conn: [conn.send(respond(404, b"missing", reason="Not Found")) for _ in conn.requests()])
    code, out, err = run_cli(capsysbinary, "-i", srv.url("/nope"))
    assert code == 0 and err == ""
    assert out.startswith(b"HTTP/1.1 404 Not Found\r\n") and out.endswith(b"\r\n\r\nmissing")


def test_data_implies_post_with_the_bytes_given(capsysbinary, server):
    srv = server(keep_alive_handler(b"ok"))
    code, out, _ = run_cli(capsysbinary, "-d", "name=value&x=é", srv.url("/form"))
    assert (code, out) == (0, b"ok")
    received = srv.received[0]
    assert received.method == "POST"
    assert received.body == "name=value&x=é".encode()
    assert received.header("content-length") == str(len(received.body))


def test_method_flag_wins_over_the_data_default(capsysbinary, server):
    srv = server(keep_alive_handler(b"ok"))
    assert run_cli(capsysbinary, "-X", "PUT", "-d", "x", srv.url("/a"))[0] == 0
    assert run_cli(capsysbinary, "-X", "DELETE", srv.url("/b"))[0] == 0
    assert [(r.method, r.target, r.body) for r in srv.received] == [("PUT", "/a", b"x"), ("DELETE", "/b", b"")]


def test_header_flags_are_sent_in_order(capsysbinary, server):
    srv = server(keep_alive_handler(b"ok"))
    code, _, _ = run_cli(capsysbinary, "-H", "X-One: 1", "-H", "x-two:  two words  ", "-H", "Host: example.test", srv.url("/"))
    assert code == 0
    received = srv.received[0]
    assert received.header("host") == "example.test"
    names = received.header_names()
    assert names.index("X-One") < names.index("x-two")
    assert received.header("x-two") == "two words"


def test_data_file_sends_the_file(capsysbinary, server, tmp_path):
    payload = bytes(range(256)) * 100
    path = tmp_path / "payload.bin"
    path.write_bytes(payload)
    srv = server(keep_alive_handler(b"ok"))
    code, out, _ = run_cli(capsysbinary, "--data-file", str(path), srv.url("/upload"))
    assert (code, out) == (0, b"ok")
    received = srv.received[0]
    assert (received.method, received.body) == ("POST", payload)
    assert received.header("content-length") == str(len(payload))


def test_trace_prints_a_waterfall_naming_every_phase(capsysbinary, server):
    srv = server(keep_alive_handler(b"traced"))
    code, out, err = run_cli(capsysbinary, "--trace", srv.url("/t"))
    assert (code, out) == (0, b"traced")
    for phase in PHASES:
        assert phase in err, (phase, err)
    assert "6 bytes" in err
    assert "total" in err


def test_connect_failure_exits_1_with_one_line(capsysbinary):
    code, out, err = run_cli(capsysbinary, f"http://127.0.0.1:{refused_port()}/")
    assert code == 1 and out == b""
    assert err.count("\n") == 1 and err.startswith("roundtrip: error: ConnectError: ")


def test_invalid_request_exits_1_with_one_line(capsysbinary):
    code, _, err = run_cli(capsysbinary, "ftp://example.test/")
    assert code == 1
    assert err == 'roundtrip: error: InvalidRequest: unsupported protocol scheme "ftp"\n'


def test_bad_header_argument_is_a_usage_error(capsysbinary):
    code, _, err = run_cli(capsysbinary, "-H", "no colon", "http://127.0.0.1:1/")
    assert code == 2 and err.count("\n") == 1 and "Name: value" in err


def test_data_and_data_file_together_are_refused(capsysbinary, tmp_path):
    code, _, err = run_cli(capsysbinary, "-d", "x", "--data-file", str(tmp_path / "f"), "http://127.0.0.1:1/")
    assert code == 2 and err.count("\n") == 1


def test_missing_data_file_exits_1(capsysbinary, tmp_path):
    code, _, err = run_cli(capsysbinary, "--data-file", str(tmp_path / "absent"), "http://127.0.0.1:1/")
    assert code == 1 and err.count("\n") == 1 and "absent" in err


def test_timeout_bounds_the_whole_exchange(capsysbinary, server):
    def silent(conn):
        conn.read_request()
        conn.wait_closed()  # never answers; returns when the client gives up

    srv = server(silent)
    code, out, err = run_cli(capsysbinary, "--timeout", "0.2", srv.url("/slow"))
    assert code == 1 and out == b""
    assert err.startswith("roundtrip: error: DeadlineExceeded: ") and err.count("\n") == 1


def test_python_m_roundtrip_is_the_same_program(server, impl):
    srv = server(keep_alive_handler(b"via -m"))
    env = _env()
    if impl is _speedups_py:
        env["ROUNDTRIP_NO_EXTENSIONS"] = "1"
    result = subprocess.run([sys.executable, "-m", "roundtrip", "-i", srv.url("/m")], capture_output=True, env=env, timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith(b"HTTP/1.1 200 OK\r\n") and result.stdout.endswith(b"\r\n\r\nvia -m")


# -- roundtrip bench ------------------------------------------------------------------------------


def _bench(tmp_path: Path, *args: str) -> tuple[subprocess.CompletedProcess, dict]:
    report_path = tmp_path / "bench.json"
    result = subprocess.run(
        [sys.executable, "-m", "roundtrip", "bench", "--smoke", "--no-progress", "--json", str(report_path), *args],
        capture_output=True,
        text=True,
        env=_env(),
        timeout=300,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return result, json.loads(report_path.read_text())


@pytest.mark.once(impl="py")  # the bench runs both implementations itself
def test_bench_smoke_checks_every_response_of_every_client(tmp_path):
    result, report = _bench(tmp_path)
    assert report["errors"] == []
    assert {"raw", "roundtrip-py"} <= set(report["clients"])
    for scenario, per_client in report["results"].items():
        assert set(per_client) == set(report["clients"]), scenario
        for client, cell in per_client.items():
            assert cell["runs"] and cell["checked"] >= cell["runs"][0]["requests"] > 0, (scenario, client)
            assert cell["cpu_us"] > 0 and cell["rate"] > 0
    assert "Every response checked" in result.stdout and "0 failure(s)" in result.stdout
    for client in report["clients"]:
        assert f"| {client} " in result.stdout
    assert "Targets" in result.stdout


@pytest.mark.once(impl="py")
def test_bench_falls_back_to_the_embedded_server_and_says_so(tmp_path):
    result, report = _bench(tmp_path, "--server", "python", "--clients", "roundtrip-py", "--scenarios", "small", "post", "threads")
    assert report["meta"]["server"] == "python"
    assert "EMBEDDED PYTHON SERVER" in result.stdout and "WARNING" in result.stderr
    assert set(report["clients"]) == {"raw", "roundtrip-py"}
    assert set(report["results"]) == {"small", "post", "threads"}
    assert report["results"]["post"]["roundtrip-py"]["checked"] > 0


@pytest.mark.once(impl="py")
def test_bench_rejects_unknown_names():
    assert main(["bench", "--clients", "nope"]) == 2


@pytest.mark.once(impl="py")
def test_bench_workers_import_the_bench_own_roundtrip_not_the_working_directory(tmp_path):
    # "pip install . && roundtrip bench" is run from the source checkout, whose unbuilt
    # roundtrip/ would shadow the installed wheel in any worker that starts from there.
    decoy = tmp_path / "roundtrip"
    decoy.mkdir()
    (decoy / "__init__.py").write_text("raise ImportError('the working directory was imported')\n")
    report_path = tmp_path / "bench.json"
    result = subprocess.run(
        # "python -P -m roundtrip" for every supported Python (-P is 3.11+): no working directory on sys.path.
        [sys.executable, "-c", "import runpy, sys; del sys.path[0]; runpy.run_module('roundtrip', run_name='__main__')", "bench", "--smoke", "--no-progress", "--json", str(report_path),
         "--clients", "roundtrip-c", "roundtrip-py", "--scenarios", "small"],
        capture_output=True,
        text=True,
        env=_env(),
        cwd=tmp_path,
        timeout=300,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    report = json.loads(report_path.read_text())
    assert report["errors"] == [], report["errors"]
    assert report["results"]["small"]["roundtrip-c"]["checked"] > 0
