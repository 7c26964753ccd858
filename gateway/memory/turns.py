"""Whose turn it is to hold memory: the scheduler's rule, as a pure function.

Given the models that hold memory, the models that requests wait for (each with the
arrival time of its oldest waiting request) and how much memory is free, `plan_turns`
says which models to load now, which resident models must stop taking new requests and
go once they are idle (a swap), and when to look again. Nothing here waits or acts: the
fleet's scheduler (gateway.fleet.scheduler) takes snapshots, calls this, and applies it.

The rules:
- Memory goes to waiting models in the order of their oldest request (so a request
  never waits behind ones that came later: no starvation). Memory promised to an older
  want is not handed to a younger one that happens to fit in what is free now.
- A victim is unpinned and ready. Idle ones go before busy ones, then the least recently
  used. A busy victim is not stopped: it stops taking new requests (they queue behind the
  swap), drains, and only then goes.
- A model loaded less than `min_resident_s` ago keeps its memory while it is in use (a
  request in flight, or one that ended under `in_use_gap_s` ago): that is its turn, and
  what groups requests for it instead of swapping per request. Its turn ends when that
  time is up, so the oldest waiter bounds how long any model keeps its memory.
- A model with requests of its own waiting, older than the want in question, is never
  that want's victim; one already chosen as a victim keeps its late-comers waiting for
  their next turn.
- A want that could not fit even with every model it may evict gone (pinned models and
  other programs hold the rest) is passed over without holding anyone up.
"""

from __future__ import annotations

from dataclasses import dataclass, field

# A model idle longer than this is no longer "in use", even within its turn: the gap
# between one request of a client's sequence ending and its next one arriving.
IN_USE_GAP_S = 2.0


@dataclass(frozen=True)
class Holder:
    """A model whose worker holds memory (loading, ready, or on its way out)."""

    model_id: str
    bytes: int  # what comes back when it goes
    ready: bool  # serving: the only state a victim can be taken from
    leaving: bool  # being unloaded already: its memory is on its way back
    pinned: bool
    in_flight: int
    ready_at: float  # monotonic: when it became ready
    released_at: float  # monotonic: when its last request ended (0: none yet)
    last_activity: float  # wall clock, for least-recently-used order
    closing: bool = False  # chosen as a victim by the previous plan


@dataclass(frozen=True)
class Want:
    """A model that requests wait for."""

    model_id: str
    oldest: float  # monotonic arrival time of its oldest waiting request
    needed: int  # its footprint, were it loaded


@dataclass(frozen=True)
class TurnRules:
    min_resident_s: float
    may_evict: bool = True  # memory.auto_evict_lru
    in_use_gap_s: float = IN_USE_GAP_S


@dataclass(frozen=True)
class TurnPlan:
    load: tuple[str, ...] = ()  # start loading these now
    close: dict[str, str] = field(default_factory=dict)  # victim -> the model it makes way for
    waits_for: dict[str, tuple[str, ...]] = field(default_factory=dict)  # want -> blockers
    wake_at: float | None = None  # monotonic: plan again then (a turn ends)


def protected_until(h: Holder, now: float, rules: TurnRules) -> float | None:
    """When this model's turn ends, or None if it has ended (or it has none)."""
    if not h.ready:
        return float("inf")  # loading: its turn has not begun (its ready ends the wait)
    turn_end = h.ready_at + rules.min_resident_s
    if now >= turn_end:
        return None
    if h.in_flight > 0:
        return turn_end
    in_use_until = max(h.released_at, h.ready_at) + rules.in_use_gap_s
    return min(turn_end, in_use_until) if now < in_use_until else None


class _Planner:
    def __init__(self, now: float, available: int, holders: list[Holder], rules: TurnRules):
        self.now = now
        self.rules = rules
        self.holders = {h.model_id: h for h in holders}
        self.available = available  # free now under the limit
        # Free once the models already leaving (and those chosen to leave) are gone.
        self.future = available + sum(h.bytes for h in holders if h.leaving)
        self.incoming = [h.model_id for h in holders if h.leaving]
        self.kept: set[str] = set()
        self.load: list[str] = []
        self.close: dict[str, str] = {}
        self.waits_for: dict[str, tuple[str, ...]] = {}
        self.wake_at: float | None = None

    def plan(self, wants: list[Want]) -> TurnPlan:
        for want in sorted(wants, key=lambda w: w.oldest):
            self._serve(want)
        return TurnPlan(tuple(self.load), self.close, self.waits_for, self.wake_at)

    def _serve(self, want: Want) -> None:
        held = self.holders.get(want.model_id)
        if held is not None and not held.leaving:
            # Loaded or loading: its requests are served by keeping it, unless an older
            # want already took it as a victim (then they wait for its next turn).
            if want.model_id in self.close:
                self.waits_for[want.model_id] = (self.close[want.model_id],)
            else:
                self.kept.add(want.model_id)
            return
        if held is not None:  # on its way out: load it again once it is gone
            self._promise(want, (want.model_id,))
        elif want.needed <= self.available:
            self.load.append(want.model_id)
            self._promise(want, ())
        elif want.needed <= self.future:
            self._promise(want, tuple(self.incoming))
        else:
            self._make_way(want)

    def _promise(self, want: Want, waits_for: tuple[str, ...]) -> None:
        """Set its memory aside: younger wants do not get it first."""
        self.available -= want.needed
        self.future -= want.needed
        self.waits_for[want.model_id] = waits_for

    def _make_way(self, want: Want) -> None:
        victims = self._victims(want.needed - self.future)
        if victims is None:  # cannot fit whatever goes: others hold the memory
            blockers = [h.model_id for h in self.holders.values() if not h.leaving]
            self.waits_for[want.model_id] = tuple(blockers)
            return
        names = tuple(v.model_id for v in victims)
        ends = [protected_until(v, self.now, self.rules) for v in victims]
        self.future += sum(v.bytes for v in victims)
        self.incoming.extend(names)
        self._promise(want, names)
        if any(end is not None for end in ends):  # someone's turn is not over yet
            self._wake(min(end for end in ends if end is not None))
            return
        for v in victims:
            self.close[v.model_id] = want.model_id

    def _victims(self, short: int) -> list[Holder] | None:
        """The fewest models to let go, freeing `short` bytes: those whose turn is over
        first, then those already chosen, idle ones, the least recently used."""
        if not self.rules.may_evict:
            return None
        candidates = [
            h
            for h in self.holders.values()
            if not h.pinned
            and not h.leaving
            and h.model_id not in self.kept
            and h.model_id not in self.incoming
        ]
        candidates.sort(
            key=lambda h: (
                protected_until(h, self.now, self.rules) is not None,
                not h.closing,
                h.in_flight > 0,
                h.last_activity,
            )
        )
        chosen: list[Holder] = []
        for h in candidates:
            if short <= 0:
                break
            chosen.append(h)
            short -= h.bytes
        return chosen if short <= 0 else None

    def _wake(self, at: float) -> None:
        if at != float("inf"):
            self.wake_at = at if self.wake_at is None else min(self.wake_at, at)


def plan_turns(
    now: float, available: int, holders: list[Holder], wants: list[Want], rules: TurnRules
) -> TurnPlan:
    return _Planner(now, available, holders, rules).plan(wants)
