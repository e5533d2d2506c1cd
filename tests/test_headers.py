"""``Headers``: case-insensitive, multi-valued, ordered, keeping the caller's spelling for
the wire; and the ``Host`` header overriding the URL's host."""

from __future__ import annotations


import pytest

import roundtrip
from roundtrip import Headers

from helpers import RecordingDial, fetch
from servers import keep_alive_handler


def test_lookup_ignores_case():
    h = Headers({"Content-Type": "text/plain"})
    assert h["content-type"] == "text/plain"
    assert h["CONTENT-TYPE"] == "text/plain"
    assert h.get("Content-type") == "text/plain"
    assert "cOnTeNt-TyPe" in h


def test_missing_name_raises_key_error_and_get_gives_default():
    h = Headers([("A", "1")])
    with pytest.raises(KeyError):
        h["B"]
    assert h.get("B") is None
    assert h.get("B", "fallback") == "fallback"
    assert "B" not in h


def test_getitem_gives_the_first_of_several_values():
    h = Headers([("Accept", "a"), ("accept", "b")])
    assert h["ACCEPT"] == "a"
    assert h.get_all("Accept") == ["a", "b"]


def test_get_all_of_a_missing_name_is_empty():
    assert Headers().get_all("X") == []


def test_order_of_fields_is_kept():
    pairs = [("B", "1"), ("A", "2"), ("b", "3"), ("C", "4")]
    h = Headers(pairs)
    assert h.items() == pairs


def test_setitem_replaces_every_value():
    h = Headers([("X", "1"), ("Y", "y"), ("x", "2")])
    h["X"] = "3"
    assert h.get_all("x") == ["3"]
    assert len(h) == 2
    assert h["y"] == "y"


def test_setitem_of_a_new_name_appends():
    h = Headers([("A", "1")])
    h["B"] = "2"
    assert h.items() == [("A", "1"), ("B", "2")]


def test_add_keeps_existing_values():
    h = Headers([("X", "1")])
    h.add("x", "2")
    h.add("X", "3")
    assert h.get_all("X") == ["1", "2", "3"]
    assert len(h) == 3


def test_del_removes_every_field_of_the_name():
    h = Headers([("X", "1"), ("Y", "y"), ("x", "2")])
    del h["X"]
    assert "x" not in h
    assert h.items() == [("Y", "y")]


def test_del_of_a_missing_name_raises_key_error():
    h = Headers([("Y", "y")])
    with pytest.raises(KeyError):
        del h["X"]


def test_len_counts_fields_not_names():
    assert len(Headers()) == 0
    assert len(Headers([("A", "1"), ("a", "2"), ("B", "3")])) == 3


def test_items_gives_one_pair_per_field_with_its_spelling():
    h = Headers([("X-Custom", "1"), ("x-custom", "2")])
    assert h.items() == [("X-Custom", "1"), ("x-custom", "2")]


def test_copy_is_independent_both_ways():
    h = Headers([("A", "1")])
    c = h.copy()
    assert c == h and c is not h
    c.add("A", "2")
    c["B"] = "b"
    assert h.items() == [("A", "1")]
    h["A"] = "changed"
    assert c.get_all("A") == ["1", "2"]


def test_equality():
    assert Headers([("A", "1"), ("B", "2")]) == Headers([("A", "1"), ("B", "2")])
    assert Headers([("A", "1")]) != Headers([("A", "2")])
    assert Headers([("A", "1")]) != Headers([("A", "1"), ("A", "1")])
    assert Headers() == Headers()


def test_built_from_mapping_pairs_or_headers():
    from_mapping = Headers({"A": "1", "B": "2"})
    from_pairs = Headers([("A", "1"), ("B", "2")])
    from_headers = Headers(from_pairs)
    assert from_mapping == from_pairs == from_headers
    from_pairs.add("C", "3")
    assert "C" not in from_headers


@pytest.mark.parametrize(
    "given",
    [None, {"A": "1"}, [("A", "1")], Headers([("A", "1")])],
    ids=["none", "mapping", "pairs", "headers"],
)
def test_request_stores_headers_as_headers(given):
    req = roundtrip.Request("GET", "http://example.com/", headers=given)
    assert isinstance(req.headers, Headers)
    if given is not None:
        assert req.headers["a"] == "1"


# -- on the wire -------------------------------------------------------------------------------


def test_spelling_and_order_are_kept_on_the_wire(transport, server):
    srv = server(keep_alive_handler())
    headers = Headers([("X-CuStOm", "one"), ("accept", "*/*"), ("x-custom", "two")])
    fetch(transport, srv.url(), headers=headers)
    head = srv.received[0].head
    assert b"\r\nX-CuStOm: one\r\n" in head
    assert b"\r\nx-custom: two\r\n" in head
    assert head.index(b"X-CuStOm: one") < head.index(b"accept: */*") < head.index(b"x-custom: two")


def test_multi_valued_header_goes_out_as_separate_fields(transport, server):
    srv = server(keep_alive_handler())
    fetch(transport, srv.url(), headers=[("X-Multi", "a"), ("X-Multi", "b")])
    assert [v for n, v in srv.received[0].headers if n == "X-Multi"] == ["a", "b"]


def test_default_host_header_is_the_url_authority(transport, server):
    srv = server(keep_alive_handler())
    fetch(transport, srv.url("/p"))
    assert srv.received[0].header("Host") == f"127.0.0.1:{srv.port}"
    assert [n.lower() for n in srv.received[0].header_names()].count("host") == 1


def test_host_header_overrides_the_host_on_the_wire(transport, server):
    srv = server(keep_alive_handler())
    fetch(transport, srv.url("/p"), headers={"host": "virtual.example:8443"})
    received = srv.received[0]
    assert received.header("Host") == "virtual.example:8443"
    assert [n.lower() for n in received.header_names()].count("host") == 1
    assert received.request_line == "GET /p HTTP/1.1"


def test_default_port_is_not_added_to_the_host_header(make_transport, server):
    srv = server(keep_alive_handler())

    dial = RecordingDial(srv.port)
    t = make_transport(dial=dial)
    fetch(t, "http://example.com/x")
    assert dial.calls == [("example.com", 80)]
    assert srv.received[0].header("Host") == "example.com"


def test_userinfo_in_the_url_is_not_sent(transport, server):
    srv = server(keep_alive_handler())
    fetch(transport, f"http://user:secret@127.0.0.1:{srv.port}/p")
    received = srv.received[0]
    assert received.header("Host") == f"127.0.0.1:{srv.port}"
    assert received.header("Authorization") is None
    assert b"secret" not in received.head


def test_response_headers_keep_order_spelling_and_repeats(transport, server):
    fields = [("Set-Cookie", "a=1"), ("X-Lower", "v"), ("set-cookie", "b=2")]
    srv = server(keep_alive_handler(b"", fields))
    with transport.round_trip(roundtrip.Request("GET", srv.url())) as resp:
        assert isinstance(resp.headers, Headers)
        assert resp.headers.get_all("SET-COOKIE") == ["a=1", "b=2"]
        names = [n for n, _ in resp.headers.items()]
        assert names[:3] == ["Set-Cookie", "X-Lower", "set-cookie"]
        resp.read()


def test_caller_headers_object_is_not_changed_by_a_round_trip(transport, server):
    srv = server(keep_alive_handler())
    headers = Headers([("Accept", "*/*")])
    fetch(transport, srv.url(), headers=headers)
    assert headers.items() == [("Accept", "*/*")]
