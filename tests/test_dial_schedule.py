"""The dial schedule (Happy Eyeballs as Go's ``dialParallel`` runs it), without sockets or
clocks: the tests say what time it is and which attempt failed."""

from __future__ import annotations

from typing import Any

import pytest

from roundtrip._dial_schedule import FALLBACK, FALLBACK_DELAY, PRIMARY, Attempt, DialSchedule, partition

V4 = ["4a", "4b", "4c"]
V6 = ["6a", "6b"]


def family(address: str) -> str:
    return address[0]


def schedule(addresses: list[str], now: float = 0.0) -> DialSchedule:
    return DialSchedule(addresses, family, now)


def started(attempts: list[Attempt]) -> list[Any]:
    return [attempt.address for attempt in attempts]


# -- partition ------------------------------------------------------------------------------


def test_partition_puts_the_first_addresses_family_first_and_keeps_the_order():
    assert partition(["6a", "4a", "6b", "4b", "4c"], family) == (["6a", "6b"], ["4a", "4b", "4c"])


def test_partition_of_one_family_has_no_fallbacks():
    assert partition(V4, family) == (V4, [])


def test_partition_of_nothing_is_empty():
    assert partition([], family) == ([], [])


def test_a_schedule_needs_an_address():
    with pytest.raises(ValueError):
        schedule([])


# -- when attempts start --------------------------------------------------------------------


def test_only_the_first_address_starts_at_once():
    plan = schedule(V6 + V4)
    assert started(plan.due(0.0)) == ["6a"]
    assert plan.due(0.0) == [], "one attempt per family at a time"


def test_the_other_family_starts_after_the_fallback_delay():
    plan = schedule(V6 + V4, now=10.0)
    plan.due(10.0)
    assert plan.wake_at() == pytest.approx(10.0 + FALLBACK_DELAY)
    assert plan.due(10.0 + FALLBACK_DELAY / 2) == []
    assert plan.due(10.0 + FALLBACK_DELAY) == [Attempt(FALLBACK, "4a")]
    assert plan.wake_at() is None, "both families are in flight: only a result changes anything"


def test_the_fallback_delay_is_go_s_300_ms():
    assert FALLBACK_DELAY == 0.3


def test_a_failed_primary_address_is_followed_by_the_next_one_of_its_family():
    plan = schedule(["6a", "6b", "4a"])
    (first,) = plan.due(0.0)
    plan.failed(first, OSError("refused"), 0.01)
    assert plan.due(0.01) == [Attempt(PRIMARY, "6b")], "the fallback still waits for its delay"
    assert plan.wake_at() == pytest.approx(FALLBACK_DELAY)


def test_the_fallback_starts_at_once_when_every_primary_has_failed():
    plan = schedule(["6a", "4a", "4b"])
    (first,) = plan.due(0.0)
    plan.failed(first, OSError("refused"), 0.05)
    assert plan.due(0.05) == [Attempt(FALLBACK, "4a")]


def test_a_late_primary_failure_does_not_move_a_fallback_already_started():
    plan = schedule(["6a", "4a", "4b"])
    (first,) = plan.due(0.0)
    (fallback,) = plan.due(FALLBACK_DELAY)
    plan.failed(first, OSError("timeout"), 1.0)
    assert plan.due(1.0) == []
    plan.failed(fallback, OSError("refused"), 1.1)
    assert plan.due(1.1) == [Attempt(FALLBACK, "4b")]


def test_both_families_proceed_independently_once_racing():
    plan = schedule(["6a", "6b", "4a", "4b"])
    (a6,) = plan.due(0.0)
    (a4,) = plan.due(FALLBACK_DELAY)
    plan.failed(a4, OSError("refused"), 0.4)
    assert plan.due(0.4) == [Attempt(FALLBACK, "4b")]
    plan.failed(a6, OSError("refused"), 0.5)
    assert plan.due(0.5) == [Attempt(PRIMARY, "6b")]


def test_one_family_is_tried_strictly_in_order():
    plan = schedule(V4)
    order = []
    for step in range(len(V4)):
        attempts = plan.due(float(step))
        assert len(attempts) == 1 and plan.wake_at() is None
        order.append(attempts[0].address)
        plan.failed(attempts[0], OSError(str(step)), float(step))
    assert order == V4
    assert plan.exhausted


# -- the error ------------------------------------------------------------------------------


def run_to_exhaustion(plan: DialSchedule, errors: dict[str, BaseException]) -> list[str]:
    """Fail every attempt as it starts, moving the clock on; the order they started in."""
    order, now = [], 0.0
    for _ in range(20):
        attempts = plan.due(now)
        for attempt in attempts:
            order.append(attempt.address)
            plan.failed(attempt, errors[attempt.address], now)
        if plan.exhausted:
            return order
        if not attempts:
            wake = plan.wake_at()
            assert wake is not None, "nothing in flight and nothing to wait for"
            now = wake
    raise AssertionError("the schedule never ran out")


def test_when_everything_fails_the_error_is_the_primaries_first():
    errors = {address: OSError(address) for address in V6 + V4}
    plan = schedule(["6a", "4a", "6b", "4b", "4c"])
    assert run_to_exhaustion(plan, errors) == ["6a", "6b", "4a", "4b", "4c"]
    assert plan.error is errors["6a"]


def test_the_error_is_the_primaries_first_even_when_a_fallback_failed_earlier():
    plan = schedule(["6a", "4a"])
    (primary,) = plan.due(0.0)
    (fallback,) = plan.due(FALLBACK_DELAY)
    first, second = OSError("fallback refused"), OSError("primary timed out")
    plan.failed(fallback, first, 0.4)
    assert not plan.exhausted
    plan.failed(primary, second, 30.0)
    assert plan.exhausted and plan.error is second


def test_not_exhausted_while_an_attempt_is_in_flight():
    plan = schedule(["4a"])
    plan.due(0.0)
    assert not plan.exhausted
