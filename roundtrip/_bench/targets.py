"""The speed roundtrip aims for, checked against a run's same-run ratios.

A target compares roundtrip with a reference in one scenario: the raw floor (of the same event
loop for the async scenarios), its own other implementation, or every peer (then the closest
peer decides, and is named). An adapter target compares what roundtrip under httpx or requests
costs beyond the library's own cost (the library over a do-nothing transport, measured in the
same run) with roundtrip's own cost: the adapter may add at most 30%.
"""

from __future__ import annotations

import statistics
from typing import Any, NamedTuple, Optional

from .registry import LOOPS
from .scenarios import SCENARIOS, TASKS, THREADS

__all__ = ("Target", "TARGETS", "paired", "evaluate")

PEERS = "every peer"


class Target(NamedTuple):
    description: str
    scenario: str
    client: str
    reference: str  # a client key, or PEERS
    metric: str  # "cpu_us" or "rate"
    comparison: str  # "<=" or ">="
    bound: float
    minus: Optional[str] = None  # a client whose metric is subtracted from ``client``'s, run by run


def _blocking_targets() -> list[Target]:
    out = []
    for scenario in ("small", "post"):
        label = SCENARIOS[scenario].label
        out.append(Target(f"{label}: CPU per request vs the raw floor", scenario, "roundtrip-c", "raw", "cpu_us", "<=", 1.3))
        out.append(Target(f"{label}: CPU per request vs every peer", scenario, "roundtrip-c", PEERS, "cpu_us", "<=", 1.0))
    threads = SCENARIOS["threads"].label
    out += [
        Target(f"{threads}, one Transport: req/s vs every peer", "threads", "roundtrip-c", PEERS, "rate", ">=", 1.0),
        Target(f"{threads}, one Transport: req/s vs {THREADS} raw threads", "threads", "roundtrip-c", "raw", "rate", ">=", 0.5),
        Target("GET 1 MiB: MB/s vs the raw floor", "1m", "roundtrip-c", "raw", "rate", ">=", 0.9),
        Target("GET 1 MiB: MB/s vs every peer", "1m", "roundtrip-c", PEERS, "rate", ">=", 1.0),
        Target("GET 1 MiB: CPU per request vs every peer (the lowest)", "1m", "roundtrip-c", PEERS, "cpu_us", "<=", 1.0),
        Target("GET 13 B: pure Python's CPU per request vs compiled", "small", "roundtrip-py", "roundtrip-c", "cpu_us", ">=", 3.0),
    ]
    for scenario in ("small", "post"):
        for library in ("httpx", "requests"):
            out.append(_adapter_target(SCENARIOS[scenario].label, scenario, library, ""))
    return out


def _adapter_target(label: str, scenario: str, library: str, at: str) -> Target:
    """CPU per request of ``library`` over roundtrip, less the library's own, against roundtrip's
    own (``at`` is ``@loop`` for an async scenario)."""
    return Target(
        f"{label}: CPU per request, {library}+roundtrip − {library}+nothing vs roundtrip-c",
        scenario, f"{library}+roundtrip{at}", f"roundtrip-c{at}", "cpu_us", "<=", 1.3, minus=f"{library}+nothing{at}",
    )


def _async_targets() -> list[Target]:
    out = []
    for loop in LOOPS:
        ours, floor = f"roundtrip-c@{loop}", f"raw@{loop}"
        for kind in ("small", "post"):
            many, one = f"async{TASKS}-{kind}", f"async-{kind}"
            label = SCENARIOS[many].label
            out += [
                Target(f"{loop}, {label}: req/s vs every peer", many, ours, PEERS, "rate", ">=", 1.0),
                Target(f"{loop}, {label}: CPU per request vs the {loop} floor", many, ours, floor, "cpu_us", "<=", 4.0),
                Target(f"{loop}, {SCENARIOS[one].label}: CPU per request vs the {loop} floor", one, ours, floor, "cpu_us", "<=", 1.5),
            ]
        for scenario in ("async-small", "async-post", f"async{TASKS}-small", f"async{TASKS}-post"):
            out.append(_adapter_target(f"{loop}, {SCENARIOS[scenario].label}", scenario, "httpx", f"@{loop}"))
    return out


TARGETS: tuple[Target, ...] = tuple(_blocking_targets() + _async_targets())


def paired(report: dict[str, Any], scenario: str, client: str, reference: str, metric: str, minus: Optional[str] = None) -> Optional[float]:
    """Median over runs of ``client``'s ``metric`` (less ``minus``'s, when given) divided by
    ``reference``'s in the same run."""
    cells = report["results"].get(scenario, {})
    if any(key not in cells for key in (client, reference, minus or client)):
        return None

    def by_run(key: str) -> dict[int, float]:
        return {r["run"]: r[metric] for r in cells[key]["runs"]}

    ours, theirs = by_run(client), by_run(reference)
    less = by_run(minus) if minus is not None else dict.fromkeys(ours, 0.0)
    ratios = [(ours[i] - less[i]) / theirs[i] for i in ours if i in theirs and i in less and theirs[i]]
    return statistics.median(ratios) if ratios else None


def _peers(report: dict[str, Any], scenario: str, client: str) -> list[str]:
    """The peers measured in ``scenario`` beside ``client`` (under the same event loop)."""
    loop = report["clients"].get(client, {}).get("loop")
    return [
        key
        for key in report["results"].get(scenario, {})
        if report["clients"].get(key, {}).get("role") == "peer" and report["clients"][key].get("loop") == loop
    ]


def evaluate(report: dict[str, Any]) -> list[dict[str, Any]]:
    """Each target with its measured ratio (None when either side was not measured), whether
    it is met, and, against every peer, which peer came closest."""
    out = []
    for target in TARGETS:
        if target.scenario not in report["results"]:
            continue
        against: Optional[str] = None
        if target.reference == PEERS:
            ratios = {}
            for peer in _peers(report, target.scenario, target.client):
                ratio = paired(report, target.scenario, target.client, peer, target.metric)
                if ratio is not None:
                    ratios[peer] = ratio
            if ratios:
                pick = max if target.comparison == "<=" else min  # the peer that makes it hardest
                against = pick(ratios, key=ratios.__getitem__)
            ratio = ratios[against] if against is not None else None
        else:
            ratio = paired(report, target.scenario, target.client, target.reference, target.metric, target.minus)
        met = None if ratio is None else (ratio <= target.bound if target.comparison == "<=" else ratio >= target.bound)
        out.append(
            {
                "target": target.description,
                "scenario": target.scenario,
                "bound": f"{target.comparison} {target.bound:.2f}",
                "ratio": ratio,
                "against": None if against is None else against.partition("@")[0],
                "met": met,
            }
        )
    return out
