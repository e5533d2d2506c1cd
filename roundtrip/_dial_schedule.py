"""Which address a dial tries when: "Happy Eyeballs" (RFC 6555) as Go's ``net.Dialer`` does it.

No I/O and no clock of its own: the caller says what time it is and what happened, the schedule
says what to start. The threaded dial in ``_dial`` runs it; an event-loop dial can run the same.

Go's ``Dialer.DialContext`` -> ``dialParallel`` / ``dialSerial``, with its default
``fallbackDelay`` of 300 ms:

- ``partition``: the addresses of the family of the first one are the primaries; those of the
  other family are the fallbacks. Each keeps the resolver's order.
- Within a family, addresses are tried one after another; an address is given up when its
  connect fails or times out, and the next one starts at once.
- The primaries start at once. The fallbacks start ``fallback_delay`` later, or as soon as
  every primary has failed, whichever is first. From then on both families race.
- The first connect to succeed wins; the caller closes every other attempt still in flight.
- When every address has failed, the error is the first one of the primaries (Go's
  ``dialParallel`` returns the primary racer's error, and ``dialSerial`` its first).

The connect timeout is per address tried and belongs to the caller. Go instead spreads one
``Dialer.Timeout`` over the addresses left in a family (``partialDeadline``, at least 2 s
each); roundtrip's ``connect_timeout`` is documented as a bound per address, so a slow first
address never shortens the time the next one gets.
"""

from __future__ import annotations

from typing import Any, Callable, Generic, Hashable, NamedTuple, Optional, Sequence, TypeVar

__all__ = ("FALLBACK_DELAY", "Attempt", "DialSchedule", "partition")

A = TypeVar("A")

FALLBACK_DELAY = 0.3  # Go's net.Dialer default fallbackDelay (RFC 6555 suggests 150-250 ms)

PRIMARY, FALLBACK = 0, 1


def partition(addresses: Sequence[A], family: Callable[[A], Hashable]) -> tuple[list[A], list[A]]:
    """``(primaries, fallbacks)``: the addresses of the first one's family, and the rest
    (Go's ``addrList.partition``). Both keep their order; primaries is empty only when
    ``addresses`` is."""
    primaries: list[A] = []
    fallbacks: list[A] = []
    for address in addresses:
        if not primaries or family(address) == family(primaries[0]):
            primaries.append(address)
        else:
            fallbacks.append(address)
    return primaries, fallbacks


class Attempt(NamedTuple):
    """One connect to start: ``address``, from lane ``PRIMARY`` or ``FALLBACK``."""

    lane: int
    address: Any


class _Lane(Generic[A]):
    """One family's addresses, tried one at a time (Go's ``dialSerial``)."""

    __slots__ = ("addresses", "next", "busy", "opens_at", "first_error")

    def __init__(self, addresses: list[A], opens_at: Optional[float]) -> None:
        self.addresses = addresses
        self.next = 0  # index of the next address to start
        self.busy = False  # an attempt of this lane is in flight
        self.opens_at = opens_at  # None: not scheduled to start (no addresses)
        self.first_error: Optional[BaseException] = None

    @property
    def done(self) -> bool:
        return not self.busy and self.next == len(self.addresses)


class DialSchedule(Generic[A]):
    """The dial plan for ``addresses`` (resolver order), begun at time ``now``.

    Use: start what ``due(now)`` returns; report each attempt's failure with ``failed``; wait
    for an attempt to finish, but not beyond ``wake_at()``; once ``exhausted``, raise
    ``error``. A success ends the dial: the schedule need not hear of it.
    """

    __slots__ = ("_lanes",)

    def __init__(self, addresses: Sequence[A], family: Callable[[A], Hashable], now: float, fallback_delay: float = FALLBACK_DELAY) -> None:
        if not addresses:
            raise ValueError("no addresses to dial")
        primaries, fallbacks = partition(addresses, family)
        self._lanes = (
            _Lane(primaries, now),
            _Lane(fallbacks, now + fallback_delay if fallbacks else None),
        )

    def due(self, now: float) -> list[Attempt]:
        """The attempts to start now (at most one per family); each counts as in flight from
        here on."""
        started = []
        for index, lane in enumerate(self._lanes):
            if lane.busy or lane.opens_at is None or lane.opens_at > now or lane.next == len(lane.addresses):
                continue
            lane.busy = True
            started.append(Attempt(index, lane.addresses[lane.next]))
            lane.next += 1
        return started

    def failed(self, attempt: Attempt, error: BaseException, now: float) -> None:
        """``attempt``'s connect failed (or timed out) with ``error`` at time ``now``."""
        lane = self._lanes[attempt.lane]
        lane.busy = False
        if lane.first_error is None:
            lane.first_error = error
        fallback = self._lanes[FALLBACK]
        if attempt.lane == PRIMARY and lane.done and fallback.opens_at is not None and fallback.opens_at > now:
            # Go's dialParallel: the primaries have all failed; the fallbacks need not wait.
            fallback.opens_at = now

    def wake_at(self) -> Optional[float]:
        """When ``due`` will next have an attempt without any attempt finishing first; None if
        only a finishing attempt can change anything."""
        times = [
            lane.opens_at
            for lane in self._lanes
            if lane.opens_at is not None and not lane.busy and lane.next < len(lane.addresses)
        ]
        return min(times) if times else None

    @property
    def exhausted(self) -> bool:
        """Every address has been tried and has failed."""
        return all(lane.done for lane in self._lanes)

    @property
    def error(self) -> BaseException:
        """The error to report once ``exhausted``: the primaries' first one."""
        error = self._lanes[PRIMARY].first_error or self._lanes[FALLBACK].first_error
        assert error is not None, "no attempt has failed"
        return error
