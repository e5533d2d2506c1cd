"""tools/fuzz_parsers.py: it runs, it reports what it did, and it catches what it is for."""

from __future__ import annotations

import importlib.util
import json
import re
import subprocess
import sys
import types
from pathlib import Path

import pytest

from roundtrip import _speedups_py
from roundtrip._events import ResponseHead

ROOT = Path(__file__).resolve().parent.parent
TOOL = ROOT / "tools" / "fuzz_parsers.py"


@pytest.fixture
def fuzz_parsers(twins):
    """The harness as a module (it needs the compiled twin, as ``twins`` does)."""
    spec = importlib.util.spec_from_file_location("fuzz_parsers", TOOL)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_fuzzing_for_a_few_seconds_reports_counts_and_no_difference(twins, tmp_path):
    out = tmp_path / "failures"
    proc = subprocess.run(
        [sys.executable, str(TOOL), "--seconds", "3", "--seed", "7", "--out", str(out)],
        cwd=ROOT, capture_output=True, text=True, timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    counts = re.search(r"^(\d+) inputs, (\d+) splits, (\d+) differences$", proc.stdout, re.M)
    assert counts is not None, proc.stdout
    inputs, splits, differences = map(int, counts.groups())
    assert inputs > 0 and splits >= inputs and differences == 0
    assert not out.exists()


class _ReasonAltered:
    """The pure parser, but every head's reason phrase gets one more character."""

    def __init__(self, method, max_head_bytes=1 << 20):
        self._parser = _speedups_py.ResponseParser(method, max_head_bytes)
        self.feed, self.feed_eof, self.take_unparsed = (
            self._parser.feed, self._parser.feed_eof, self._parser.take_unparsed,
        )

    def next_event(self):
        event = self._parser.next_event()
        if isinstance(event, ResponseHead):
            event.reason += "!"
        return event


def test_a_difference_is_found_and_its_input_saved(fuzz_parsers, monkeypatch, tmp_path):
    monkeypatch.setattr(fuzz_parsers, "_speedups_py", types.SimpleNamespace(ResponseParser=_ReasonAltered))
    inputs, _, differences = fuzz_parsers.fuzz(30, seed=3, out_dir=tmp_path, max_differences=1)
    assert differences == 1 and inputs >= 1
    [saved] = tmp_path.glob("*.bin")
    info = json.loads(saved.with_suffix(".json").read_text())
    assert "!" in info["difference"] and set(info) >= {"method", "eof", "budget", "cuts"}
    # What was saved shows the difference again.
    assert fuzz_parsers.compare(saved.read_bytes(), info["method"], info["eof"], info["budget"], info["cuts"])


def test_a_crash_of_the_fuzzing_process_saves_the_input_it_was_on(fuzz_parsers, tmp_path):
    # A stand-in child: announces an input as the harness's child does, then dies of a signal.
    child = (
        "import os, signal, sys; sys.path.insert(0, sys.argv[1]); import fuzz_parsers as f;"
        "f._send(sys.stdout.buffer, b'I', b'{\"method\": \"GET\", \"eof\": false, \"budget\": 9}\\nHTTP/1.1 2');"
        "os.kill(os.getpid(), signal.SIGKILL)"
    )
    status, counts = fuzz_parsers.supervise([sys.executable, "-c", child, str(TOOL.parent)], tmp_path)
    assert (status, counts) == (1, None)
    [saved] = tmp_path.glob("*.bin")
    assert saved.read_bytes() == b"HTTP/1.1 2"
    info = json.loads(saved.with_suffix(".json").read_text())
    assert info["method"] == "GET" and info["budget"] == 9 and "-9" in info["crash"]
