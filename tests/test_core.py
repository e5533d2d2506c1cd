"""The I/O-free core: the modules that decide (preparation, routes and pool keys, the retry
decision, pool bookkeeping, proxy choice and handshakes, the dial schedule) import nothing that
does I/O or waits, so that the threaded and the asyncio transport can both stand on them."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import roundtrip
from roundtrip._handshake import Receive, Send
from roundtrip._route import PoolKey
from roundtrip._socks import socks5_handshake

PACKAGE = Path(roundtrip.__file__).resolve().parent  # the sources, installed or in the checkout
CORE = (
    "_dial_schedule",
    "_errors",
    "_events",
    "_framing",
    "_handshake",
    "_headers",
    "_messages",
    "_models",
    "_options",
    "_pool",
    "_prepare",
    "_proxy",
    "_request_body",
    "_retry",
    "_route",
    "_socks",
    "_trace",
    "_tunnel",
    "_urls",
    "_version",
)
FORBIDDEN = {"socket", "ssl", "select", "selectors", "threading", "asyncio"}


def _imports(module: str) -> set[str]:
    """What ``module`` imports when it runs (imports under ``if TYPE_CHECKING:`` are for the
    type checker only): package modules as ``.name``, others by their top-level name."""
    tree = ast.parse((PACKAGE / f"{module}.py").read_text())
    type_only = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and getattr(node.test, "id", None) == "TYPE_CHECKING":
            type_only.update(id(child) for child in ast.walk(node))
    found = set()
    for node in ast.walk(tree):
        if id(node) in type_only:
            continue
        if isinstance(node, ast.Import):
            found.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                found.update(f".{alias.name}" for alias in node.names) if not node.module else found.add(f".{node.module}")
            else:
                found.add(node.module.split(".")[0])
    return found


@pytest.mark.once
@pytest.mark.parametrize("module", CORE)
def test_core_module_imports_nothing_that_does_io(module):
    imports = _imports(module)
    assert not imports & FORBIDDEN, f"{module} imports {sorted(imports & FORBIDDEN)}"
    inside = {name[1:] for name in imports if name.startswith(".")}
    assert inside <= set(CORE), f"{module} imports {sorted(inside - set(CORE))}, which are not part of the core"


@pytest.mark.once
def test_the_core_list_names_real_modules():
    assert all((PACKAGE / f"{module}.py").is_file() for module in CORE)


@pytest.mark.once
def test_pool_keys_are_values_compared_by_every_field():
    alice = PoolKey("https", "example.com:443", "http://proxy:3128", ("alice", "secret"))
    same = PoolKey("https", "example.com:443", "http://proxy:3128", ("alice", "secret"))
    bob = PoolKey("https", "example.com:443", "http://proxy:3128", ("bob", "secret"))
    assert alice == same and hash(alice) == hash(same)
    assert alice != bob, "connections opened with other proxy credentials are never shared"
    text = "https://example.com:443 via http://proxy:3128"
    assert str(alice) == str(bob) == text
    assert "secret" not in repr(alice) and "alice" not in repr(alice)
    assert str(PoolKey("http", "[::1]:8080")) == "http://[::1]:8080"


@pytest.mark.once
def test_a_socks_handshake_runs_without_a_socket():
    # The handshake says what to send and what to receive; any shell can drive it.
    steps = socks5_handshake("example.com", 443, "user", "pw")
    assert next(steps) == Send(b"\x05\x02\x00\x02")
    assert steps.send(b"") == Receive(2)
    assert steps.send(b"\x05\x02") == Send(b"\x01\x04user\x02pw")
    assert steps.send(b"") == Receive(2)
    assert steps.send(b"\x01\x00") == Send(b"\x05\x01\x00\x03\x0bexample.com\x01\xbb")
    assert steps.send(b"") == Receive(4)
    assert steps.send(b"\x05\x00\x00\x01") == Receive(6)
    with pytest.raises(StopIteration):
        steps.send(b"\x7f\x00\x00\x01\x04\x38")


class _Conn:
    def __init__(self, key: PoolKey) -> None:
        self.key = key
        self.idle_since = 0.0
        self.closed = False


def test_a_pool_key_keeps_its_state_while_it_has_idle_connections_and_only_then(impl):
    from roundtrip._pool import PoolState

    state = PoolState(impl.IdleConnections(100, 16), max_conns_per_host=0, idle_conn_timeout=None, keep_alive=True)
    key = PoolKey("http", "127.0.0.1:80")
    conn = _Conn(key)
    state._host(key).active += 1  # as a dial that finished hands it over
    assert state.release(conn, True, 1.0)
    kept = state._hosts[key]
    # The usual request: take the idle connection, give it back; the key's state is reused.
    for now in (2.0, 3.0):
        assert state.take_idle(key, now) is conn
        assert state.release(conn, True, now)
        assert state._hosts[key] is kept and kept.active == 0
    # Nothing left under the key: its state goes (many keys used once leave nothing behind).
    state.close_idle()
    assert key not in state._hosts
    assert state.take_idle(key, 4.0) is None and key not in state._hosts
    state._host(key).active += 1
    assert not state.release(_Conn(key), False, 5.0)
    assert key not in state._hosts
